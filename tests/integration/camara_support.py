"""Shared by the CAMARA tests: a running API with resim's own token issuer, and
a validator of every response against the normative sim-swap.yaml."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import schemathesis
import sqlalchemy as sa

from resim.adapters.db import orm
from resim.adapters.db.engine import create_read_engine
from resim.adapters.token_issuer import LocalTokenIssuer
from resim.bootstrap import build_camara
from resim.entrypoints.api.app import ApiConfig, build_app
from resim.entrypoints.camara.mount import CamaraRuntime
from resim.entrypoints.camara.simswap import SPEC
from resim.entrypoints.serving import ServerThread
from resim.services.context import ServiceContext
from resim.services.unit_of_work import new_id
from resim.settings import Settings

SPEC_SCHEMA = schemathesis.openapi.from_path(str(SPEC))
CORRELATOR = re.compile(r"[a-zA-Z0-9-_:;.\/<>{}]{0,256}")
BASE = "/sim-swap/v2"


def conforms(path: str, response: httpx.Response) -> None:
    """The response is documented for ``path`` and matches its schema, with x-correlator."""
    operation = SPEC_SCHEMA[path.removeprefix(BASE)]["POST"]
    documented = operation.definition.raw["responses"]
    assert str(response.status_code) in documented, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    operation.validate_response(response)
    correlator = response.headers.get("x-correlator")
    assert correlator is not None and CORRELATOR.fullmatch(correlator), correlator


@dataclass
class Camara:
    url: str
    issuer: LocalTokenIssuer
    runtime: CamaraRuntime
    ctx: ServiceContext
    http: httpx.Client

    def token(
        self,
        *scopes: str,
        phone: str | None = None,
        client: str = "bank-1",
        ttl: int = 3600,
        **extra: Any,
    ) -> str:
        return self.issuer.issue(
            scopes=scopes or ("sim-swap",),
            client_id=client,
            now=self.ctx.now(),
            ttl_seconds=ttl,
            phone_number=phone,
            extra=extra or None,
        )

    def post(
        self, path: str, body: Any, token: str | None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        sent = dict(headers or {})
        if token is not None:
            sent["authorization"] = f"Bearer {token}"
        response = self.http.post(BASE + path, json=body, headers=sent)
        conforms(BASE + path, response)
        return response


def camara_settings(db_url: str, data_dir: Path, **overrides: Any) -> Settings:
    return Settings(
        database_url=db_url,
        data_dir=data_dir,
        secret_keys="gCuHV2bJ3lqkC9b6V5Rj0bSLKc0tqtZ5V6xnCQ8Y1dA=",
        public_base_url="https://api.resim.test",
        **overrides,
    )


def serve_camara(
    ctx: ServiceContext, settings: Settings, *, runtime: CamaraRuntime | None = None
) -> Iterator[Camara]:
    engine = create_read_engine(settings.effective_database_url, pool_size=4)
    runtime = runtime or build_camara(settings, clock=ctx.clock, read_engine=engine)
    assert runtime.issuer is not None or runtime.access is not None
    issuer = LocalTokenIssuer.from_file(
        settings.camara_issuer_key_file,
        issuer=settings.camara_effective_issuer,
        audience=settings.camara_effective_audience,
    )
    server = ServerThread(build_app(ctx, ApiConfig(camara=runtime))).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            yield Camara(server.url, issuer, runtime, ctx, http)
    finally:
        server.stop()
        engine.dispose()


def add_sim_change(
    ctx: ServiceContext, *, msisdn: str, at: dt.datetime, old: str | None, new: str
) -> None:
    """A history row as the importer writes it (request_id NULL)."""
    with ctx.uow() as uow:
        line_id = uow.session.execute(
            sa.select(orm.line.c.id).where(orm.line.c.msisdn == msisdn)
        ).scalar_one()
        uow.session.execute(
            orm.sim_change.insert().values(
                id=new_id(),
                msisdn=msisdn,
                line_id=line_id,
                changed_at=at,
                old_iccid=old,
                new_iccid=new,
                request_id=None,
            )
        )
        uow.commit()
