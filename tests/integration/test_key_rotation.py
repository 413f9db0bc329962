"""SEC-10/11: secrets at rest are encrypted with keys from settings, and rotation works.

Data is written under key A; settings become "B,A"; ``resim keys rotate``;
then settings "B" alone read every secret back. SIM keys come in through the
stock import and are never printed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from resim.adapters.crypto import SecretBox, SecretUnreadable
from resim.adapters.db import orm
from resim.adapters.db.migrate import upgrade
from resim.adapters.db.stores.sealed import targets
from resim.adapters.mail.fake import FakeMailer
from resim.bootstrap import build_context, build_engine
from resim.domain.model import ReplacementRequest, Sim, Subscriber
from resim.entrypoints.cli import app
from resim.services.context import ServiceContext
from resim.services.replacement import requests
from resim.settings import Settings

pytestmark = pytest.mark.integration
KEY_A = "gCuHV2bJ3lqkC9b6V5Rj0bSLKc0tqtZ5V6xnCQ8Y1dA="
KEY_B = SecretBox.generate_key()
KI = "000102030405060708090A0B0C0D0E0F"
OPC = "F0E0D0C0B0A090807060504030201000"
MATCHING_ID = "SECRET-MATCHING-ID-1234"
ACTIVATION = f"LPA:1$smdp.resim.test${MATCHING_ID}"
ADDRESS = "Strandvejen 1, 2900 Hellerup"
BRANDS = """
[[brand]]
id = "dk"
name = "Nordlys"
country = "DK"
currency = "DKK"
language = "da"
timezone = "Europe/Copenhagen"

[brand.policy.verification]  # the imported line has no PIN: the e-mail code alone
api = [["email_otp"]]
portal = [["email_otp"]]
agent = [["id_document"]]
"""


def env(db_url: str, tmp_path: Path, keys: str) -> dict[str, str]:
    return {
        "RESIM_DATABASE_URL": db_url,
        "RESIM_DATA_DIR": str(tmp_path),
        "RESIM_SECRET_KEYS": keys,
        "RESIM_LOG_LEVEL": "WARNING",
    }


def cli(db_url: str, tmp_path: Path, keys: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=env(db_url, tmp_path, keys))
    return result.exit_code, result.output


def context(db_url: str, tmp_path: Path, keys: str) -> tuple[ServiceContext, sa.Engine]:
    settings = Settings(database_url=db_url, data_dir=tmp_path, secret_keys=keys)  # type: ignore[arg-type]
    engine = build_engine(settings, pool_size=3)
    return build_context(settings, engine=engine, mailer=FakeMailer()), engine


def raw_values(engine: sa.Engine) -> list[str]:
    """Every stored encrypted value, as the database holds it."""
    found: list[str] = []
    with engine.connect() as conn:
        for target in targets():
            col = sa.type_coerce(target.column, sa.JSON if target.json_key else sa.Text)
            for (value,) in conn.execute(sa.select(col).where(target.column.is_not(None))):
                if target.json_key:
                    value = (value or {}).get(target.json_key)
                if value is not None:
                    found.append(str(value))
    return found


def test_rotate_from_a_to_b_then_b_alone_reads_everything(db_url: str, tmp_path: Path) -> None:
    upgrade(db_url)
    (tmp_path / "brands.toml").write_text(BRANDS)
    (tmp_path / "subscribers.csv").write_text(
        "subscriber_id,brand_id,name,email,language\nK-1,dk,Karen Blixen,karen@example.dk,da\n"
    )
    (tmp_path / "sims.csv").write_text(
        "iccid,imsi,form,state,brand_id\n8945010000000000014,238010000000001,esim,active,dk\n"
    )
    (tmp_path / "lines.csv").write_text(
        "msisdn,subscriber_id,brand_id,status,iccid\n+4520123401,K-1,dk,active,8945010000000000014\n"
    )
    (tmp_path / "stock.csv").write_text(
        "brand_id,iccid,imsi,profile_type,ki,opc\n"
        f"dk,8945010000000000022,238010000000002,default,{KI},{OPC}\n"
        f"dk,8945010000000000030,238010000000003,default,{KI[:-1]}Z,{OPC}\n"
    )
    assert cli(db_url, tmp_path, KEY_A, "import", "brands", str(tmp_path / "brands.toml"))[0] == 0
    for kind in ("subscribers", "sims", "lines"):
        code, out = cli(db_url, tmp_path, KEY_A, "import", kind, str(tmp_path / f"{kind}.csv"))
        assert code == 0, out
    code, out = cli(db_url, tmp_path, KEY_A, "import", "stock", str(tmp_path / "stock.csv"))
    assert code == 1 and "line 3: ki" in out and "1 written" in out, out
    assert KI not in out and KI[:-1] not in out and OPC not in out

    ctx_a, engine = context(db_url, tmp_path, KEY_A)
    opened = requests.open_request(ctx_a, msisdn="+4520123401", reason="lost")  # mail jobs
    with ctx_a.uow() as uow:
        req = uow.session.get(ReplacementRequest, opened.id)
        assert req is not None
        req.activation_code_enc = ctx_a.secrets.encrypt(ACTIVATION)
        req.matching_id = MATCHING_ID  # an EncryptedText column: rotated with the others
        uow.commit()
    with engine.begin() as conn:  # a value written before the column was encrypted
        conn.execute(sa.update(orm.subscriber).values(postal_address=sa.literal(ADDRESS)))
    engine.dispose()
    before = raw_values(engine)
    assert ADDRESS in before and all(KI not in v for v in before)
    assert all(MATCHING_ID not in v for v in before)

    code, out = cli(db_url, tmp_path, f"{KEY_B},{KEY_A}", "keys", "rotate")
    assert code == 0, out
    assert "1 clear values encrypted" in out
    assert "sim.ki: 1 rewritten" in out and "job.payload[sealed]" in out
    assert "replacement_request.matching_id: 1 rewritten" in out
    assert KI not in out and ACTIVATION not in out and ADDRESS not in out
    assert MATCHING_ID not in out
    code, out = cli(db_url, tmp_path, f"{KEY_B},{KEY_A}", "keys", "rotate")
    assert code == 0 and "0 re-encrypted, 0 clear values encrypted" in out, out

    ctx_b, engine = context(db_url, tmp_path, KEY_B)
    only_b = SecretBox([KEY_B])
    after = raw_values(engine)
    assert len(after) == len(before) >= 8
    assert all(only_b.is_current(v) for v in after)
    with ctx_b.uow() as uow:
        sub = uow.session.scalars(sa.select(Subscriber)).one()
        assert (sub.name, sub.email, sub.postal_address) == (
            "Karen Blixen",
            "karen@example.dk",
            ADDRESS,
        )
        sim = uow.session.get(Sim, "8945010000000000022")
        assert sim is not None and (sim.ki, sim.opc) == (KI, OPC)
        req = uow.session.get(ReplacementRequest, opened.id)
        assert req is not None and req.activation_code_enc is not None
        assert ctx_b.secrets.decrypt(req.activation_code_enc) == ACTIVATION
        assert req.matching_id == MATCHING_ID
        payloads = uow.session.scalars(sa.select(orm.job.c.payload)).all()
        sealed = [json.loads(ctx_b.secrets.decrypt(p["sealed"])) for p in payloads
                  if p.get("sealed")]  # fmt: skip
        assert {s["to"] for s in sealed} == {"karen@example.dk", "+4520123401"}  # mail, SMS
        assert any("code" in s["context"] for s in sealed)
        assert any("not_me_url" in s["context"] for s in sealed)
    engine.dispose()


def test_rotation_stops_and_names_the_column_when_no_key_opens_a_value(
    db_url: str, tmp_path: Path
) -> None:
    upgrade(db_url)
    (tmp_path / "brands.toml").write_text(BRANDS)
    (tmp_path / "stock.csv").write_text(
        f"brand_id,iccid,imsi,profile_type,ki,opc\ndk,8945010000000000022,238010000000002,default,{KI},\n"
    )
    cli(db_url, tmp_path, KEY_A, "import", "brands", str(tmp_path / "brands.toml"))
    assert cli(db_url, tmp_path, KEY_A, "import", "stock", str(tmp_path / "stock.csv"))[0] == 0
    code, out = cli(db_url, tmp_path, KEY_B, "keys", "rotate")
    assert code == 1 and "sim.ki" in out and KI not in out
    ctx_b, engine = context(db_url, tmp_path, KEY_B)
    with ctx_b.uow() as uow, pytest.raises(SecretUnreadable):
        uow.session.get(Sim, "8945010000000000022")
    engine.dispose()
