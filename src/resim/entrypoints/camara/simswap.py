"""CAMARA SIM Swap 2.1.0: ``POST /sim-swap/v2/check`` and ``POST /sim-swap/v2/retrieve-date``.

Normative: ``spec/sim-swap.yaml`` (served at ``/sim-swap/v2/openapi.yaml``). With
``RESIM_CAMARA_VERSION=2.2`` the same operations at ``/sim-swap/v2rc3`` follow
``spec/2.2/sim-swap.yaml``: a property the schema does not name, at any depth, is
400 INVALID_ARGUMENT, and ``monitoredPeriod`` is at most 999 days
(``entrypoints.camara.versions``).
Thin: resolve the number (token or body), ask :class:`SimSwapQueries`, render.

* 2-legged token: ``phoneNumber`` required, else 422 MISSING_IDENTIFIER;
  3-legged token (bound to a number): ``phoneNumber`` must be absent, else 422
  UNNECESSARY_IDENTIFIER (even when it is the same number, per the spec).
* ``maxAge``: an integer, default 240. Above 2400: 400 OUT_OF_RANGE (the
  CAMARA test plan, check_sim_swap_400.3); below 1 or not an integer: 400
  INVALID_ARGUMENT; above the brand's legal limit: 400 OUT_OF_RANGE naming it.
* Unknown number: 404 IDENTIFIER_NOT_FOUND; ceased line: 422
  SERVICE_NOT_APPLICABLE.
* Properties the schema does not name are ignored in 2.1 (the schema allows
  them), refused in 2.2 ("Request body strictness").

Hot path (docs/camara.md, "Performance"): the handlers are ``async`` and make
their one indexed read on the event loop (tens to a few hundred microseconds)
instead of handing each request to the thread pool (several thread hand-offs
per request in FastAPI, each dearer than the read); answers are rendered to
bytes directly, without response-model validation.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from resim.entrypoints.api.access import allow
from resim.entrypoints.camara.auth import CamaraCaller, camara_caller
from resim.entrypoints.camara.errors import CamaraError
from resim.entrypoints.camara.versions import V2_1, CamaraVersion
from resim.errors import InvalidInput, NotFound, Refused, ResimError
from resim.services.camara.simswap import SimSwapQueries

PREFIX = V2_1.simswap_prefix
SPEC = V2_1.simswap_spec
PHONE_PATTERN = r"^\+[1-9][0-9]{4,14}$"
CHECK_SCOPES = (frozenset({"sim-swap:check"}), frozenset({"sim-swap"}))
RETRIEVE_SCOPES = (frozenset({"sim-swap:retrieve-date"}), frozenset({"sim-swap"}))
JSON = "application/json"
SWAPPED, NOT_SWAPPED = b'{"swapped":true}', b'{"swapped":false}'


class CreateSimSwapDate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    # absent means "from the token"; an explicit null is not a PhoneNumber
    phoneNumber: StrictStr | None = Field(None, pattern=PHONE_PATTERN)

    @field_validator("phoneNumber", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("phoneNumber cannot be null (leave it out instead)")
        return value


class CreateCheckSimSwap(CreateSimSwapDate):
    maxAge: StrictInt = 240


class StrictSimSwapDate(CreateSimSwapDate):
    model_config = ConfigDict(extra="forbid")


class StrictCheckSimSwap(CreateCheckSimSwap):
    model_config = ConfigDict(extra="forbid")


Body = TypeVar("Body", CreateCheckSimSwap, CreateSimSwapDate, StrictCheckSimSwap, StrictSimSwapDate)


async def parse_body(request: Request, model: type[Body]) -> Body:
    """The JSON body as ``model``, parsed by pydantic straight from the bytes
    (FastAPI's body machinery cost more than the database read). Errors are
    RequestValidationError, rendered 400 INVALID_ARGUMENT like FastAPI's own."""
    kind = request.headers.get("content-type", "application/json").lower()
    if "json" not in kind:
        raise CamaraError(400, "INVALID_ARGUMENT", "The request body must be application/json.")
    raw = await request.body()
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        raise RequestValidationError(errors) from None


def subject_number(caller: CamaraCaller, given: str | None) -> str:
    """The number the call is about: from the token (3-legged) or the body (2-legged)."""
    if caller.phone_number is not None:
        if given is not None:
            raise CamaraError(
                422,
                "UNNECESSARY_IDENTIFIER",
                "The device is already identified by the access token: omit phoneNumber.",
            )
        return caller.phone_number
    if given is None:
        raise CamaraError(
            422,
            "MISSING_IDENTIFIER",
            "The device cannot be identified: phoneNumber is required with this access token.",
        )
    return given


def _camara(exc: ResimError) -> CamaraError:
    if isinstance(exc, NotFound):
        return CamaraError(404, "IDENTIFIER_NOT_FOUND", exc.message)
    if isinstance(exc, Refused):
        return CamaraError(422, "SERVICE_NOT_APPLICABLE", exc.message)
    if isinstance(exc, InvalidInput):
        return CamaraError(400, exc.code, exc.message)
    return CamaraError.generic(500)


def rfc3339(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_simswap_router(
    queries: SimSwapQueries | None,
    registry: CollectorRegistry | None = None,
    version: CamaraVersion = V2_1,
) -> APIRouter:
    """The two operations at ``version``'s base path; ``queries`` None (CAMARA not
    configured): 503 after auth."""
    check_model: type[CreateCheckSimSwap] = (
        StrictCheckSimSwap if version.strict else CreateCheckSimSwap
    )
    date_model: type[CreateSimSwapDate] = StrictSimSwapDate if version.strict else CreateSimSwapDate
    most_days = version.max_monitored_days
    answers = Counter(
        "resim_camara_answers",
        "CAMARA SIM Swap answers by operation and outcome (no audit row per read)",
        ["operation", "outcome"],
        registry=registry,
    )
    router = APIRouter(prefix=version.simswap_prefix, tags=["camara"], include_in_schema=False)

    def ready() -> SimSwapQueries:
        if queries is None:
            raise CamaraError.generic(503, "The SIM Swap API is not configured.")
        return queries

    @router.post("/check", openapi_extra={"requestBody": {"required": True}})
    async def check(
        request: Request,
        caller: Annotated[CamaraCaller, camara_caller(*CHECK_SCOPES)],
    ) -> Response:
        body = await parse_body(request, check_model)
        if body.maxAge > 2400:
            answers.labels("check", "OUT_OF_RANGE").inc()
            raise CamaraError(400, "OUT_OF_RANGE", "maxAge cannot exceed 2400 hours.")
        if body.maxAge < 1:
            answers.labels("check", "INVALID_ARGUMENT").inc()
            raise CamaraError(400, "INVALID_ARGUMENT", "maxAge must be at least 1 hour.")
        try:
            msisdn = subject_number(caller, body.phoneNumber)
            swapped = ready().check(msisdn=msisdn, max_age_hours=body.maxAge)
        except ResimError as exc:
            answers.labels("check", exc.code).inc()
            raise _camara(exc) from None
        except CamaraError as exc:
            answers.labels("check", exc.code).inc()
            raise
        answers.labels("check", "swapped" if swapped else "not_swapped").inc()
        return Response(SWAPPED if swapped else NOT_SWAPPED, media_type=JSON)

    @router.post("/retrieve-date", openapi_extra={"requestBody": {"required": True}})
    async def retrieve_date(
        request: Request,
        caller: Annotated[CamaraCaller, camara_caller(*RETRIEVE_SCOPES)],
    ) -> Response:
        body = await parse_body(request, date_model)
        try:
            msisdn = subject_number(caller, body.phoneNumber)
            latest = ready().latest(msisdn=msisdn)
        except ResimError as exc:
            answers.labels("retrieve-date", exc.code).inc()
            raise _camara(exc) from None
        except CamaraError as exc:
            answers.labels("retrieve-date", exc.code).inc()
            raise
        answer: dict[str, Any]
        if latest.at is None:
            answers.labels("retrieve-date", "null").inc()
            answer = {"latestSimChange": None}
            if latest.monitored_days is not None:
                days = latest.monitored_days
                # 2.2: 1..999. "No swap in the last D days" (D > 999) implies none in 999.
                answer["monitoredPeriod"] = min(days, most_days) if most_days else days
        else:
            answers.labels("retrieve-date", "date").inc()
            answer = {"latestSimChange": rfc3339(latest.at)}
        return Response(json.dumps(answer).encode(), media_type=JSON)

    spec = version.simswap_spec.read_bytes()

    @router.get("/openapi.yaml", dependencies=[allow("anyone")])
    def openapi(_request: Request) -> Response:
        """The normative CAMARA document this API implements (Apache-2.0, see SOURCE.txt)."""
        return Response(spec, media_type="application/yaml")

    return router
