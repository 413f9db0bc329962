"""A stand-in for PyHSS's REST API, for tests: the part resim's adapter uses.

PyHSS is on no package registry these machines reach, so CI runs the
CoreNetwork contract against this instead. It was written from PyHSS 2.0.0's
API as observed against the real service (status codes, bodies, quirks; see
``pyhss_http``), not from its code, and is kept honest by the same contract
suite, which also runs against a real PyHSS when ``RESIM_TEST_PYHSS_URL`` names
one (docs/operations.md says how).

What it models: APNs (ids only), AuC records (keys echoed by PUT, left out of
every other answer), subscribers (IMSI unique, MSISDN not unique, ``+``
stripped, ``null`` answers for anything absent or ambiguous), the
Provisioning-Key check on writes, and Cancel-Location pushes to the Diameter
peers it is told are connected. The network side that PyHSS learns from
Diameter/GSUP (an MME's Update-Location) is driven by ``POST
/standin/attach/<imsi>``; the Cancel-Locations pushed are read from ``GET
/standin/clr``. A stand-in, never a production default.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

_SANITISED = ("ki", "opc", "des", "kid", "psk", "adm1")
_SUBSCRIBER_FIELDS = [
    "imsi",
    "enabled",
    "auc_id",
    "default_apn",
    "apn_list",
    "msisdn",
    "ue_ambr_dl",
    "ue_ambr_ul",
    "nam",
    "roaming_enabled",
    "roaming_rule_list",
    "subscribed_rau_tau_timer",
]
_SERVING = [
    "serving_mme",
    "serving_mme_timestamp",
    "serving_mme_realm",
    "serving_mme_peer",
    "serving_msc",
    "serving_msc_timestamp",
    "serving_vlr",
    "serving_vlr_timestamp",
    "serving_sgsn",
    "serving_sgsn_timestamp",
]


class PyHssState:
    """The stand-in's tables, behind one lock (PyHSS serialises in its database)."""

    def __init__(self, provisioning_key: str | None, connected_peers: set[str]) -> None:
        self.provisioning_key = provisioning_key
        self.connected_peers = connected_peers
        self.lock = threading.Lock()
        self.auc: dict[int, dict[str, Any]] = {}
        self.subscribers: dict[int, dict[str, Any]] = {}
        self.clr: list[dict[str, Any]] = []
        self._ids = {"auc": 0, "subscriber": 0}

    def next_id(self, table: str) -> int:
        self._ids[table] += 1
        return self._ids[table]


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _failed(reason: str, status: int) -> JSONResponse:
    return JSONResponse({"result": "Failed", "reason": reason}, status_code=status)


def _strip_plus(body: dict[str, Any]) -> dict[str, Any] | JSONResponse:
    if "msisdn" in body:
        if body["msisdn"] is None:  # PyHSS calls .replace() on it
            return _failed("An internal server error occurred: 'NoneType' ...", 500)
        body["msisdn"] = str(body["msisdn"]).replace("+", "")
    return body


def _int_id(raw: str) -> int | None:
    return int(raw) if raw.isdigit() else None


def build_pyhss_standin(
    *, provisioning_key: str | None = None, connected_peers: set[str] | None = None
) -> FastAPI:
    state = PyHssState(provisioning_key, connected_peers or set())
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.state.pyhss = state

    @app.middleware("http")
    async def provisioning_key_check(request: Request, call_next: Any) -> Any:
        writes = request.method in ("PUT", "PATCH", "POST", "DELETE")
        if (
            writes
            and state.provisioning_key
            and not request.url.path.startswith("/standin/")
            and request.headers.get("Provisioning-Key") != state.provisioning_key
        ):
            return JSONResponse({"Result": "Unauthorized - Provisioning-Key Invalid"}, 401)
        return await call_next(request)

    @app.exception_handler(404)
    async def not_found(_request: Request, _exc: Exception) -> JSONResponse:
        return JSONResponse({"Result": "Not Found"}, status_code=404)

    @app.get("/oam/ping")
    def ping() -> dict[str, str]:
        return {"result": "OK"}

    # ------------------------------------------------------------------ AuC

    @app.put("/auc/")
    async def create_auc(request: Request) -> Any:
        body = await request.json()
        with state.lock:
            for field in ("ki", "opc", "amf"):
                if not body.get(field):
                    return _failed(f"A database integrity error occurred: NOT NULL {field}", 400)
            for unique in ("imsi", "iccid"):
                value = body.get(unique)
                if value and any(a.get(unique) == value for a in state.auc.values()):
                    return _failed(f"A database integrity error occurred: UNIQUE {unique}", 400)
            auc_id = state.next_id("auc")
            record = {"misc1": None, "algo": "3", "esim": False, "sqn": None, **body}
            record.update(auc_id=auc_id, last_modified=_now())
            state.auc[auc_id] = record
            return dict(record)  # PyHSS echoes the keys here

    def sanitised(record: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if record is None else {k: v for k, v in record.items() if k not in _SANITISED}

    @app.get("/auc/imsi/{imsi}")
    def auc_by_imsi(imsi: str) -> Any:
        with state.lock:
            return sanitised(next((a for a in state.auc.values() if a.get("imsi") == imsi), None))

    @app.get("/auc/{auc_id}")
    def get_auc(auc_id: str) -> Any:
        with state.lock:
            key = _int_id(auc_id)
            return sanitised(state.auc.get(key) if key is not None else None)

    @app.patch("/auc/{auc_id}")
    async def patch_auc(auc_id: str, request: Request) -> Any:
        body = await request.json()
        with state.lock:
            key = _int_id(auc_id)
            record = state.auc.get(key) if key is not None else None
            if record is None:
                return None
            record.update({k: v for k, v in body.items() if k in record or k in _SANITISED})
            record["last_modified"] = _now()
            return sanitised(record)

    # ------------------------------------------------------------------ subscribers

    @app.put("/subscriber/")
    async def create_subscriber(request: Request) -> Any:
        body = _strip_plus(await request.json())
        if isinstance(body, JSONResponse):
            return body
        with state.lock:
            for field in ("auc_id", "default_apn", "apn_list", "imsi"):
                if body.get(field) in (None, ""):
                    return _failed(f"A database integrity error occurred: NOT NULL {field}", 400)
            if any(s["imsi"] == body["imsi"] for s in state.subscribers.values()):
                return _failed("A database integrity error occurred: UNIQUE subscriber.imsi", 400)
            sub_id = state.next_id("subscriber")
            record: dict[str, Any] = dict.fromkeys(_SERVING)
            record.update(enabled=True, msisdn=None, nam=0, roaming_enabled=True)
            record.update({k: v for k, v in body.items() if k in _SUBSCRIBER_FIELDS})
            record.update(subscriber_id=sub_id, last_modified=_now())
            state.subscribers[sub_id] = record
            return dict(record)

    def find(field: str, value: str) -> list[dict[str, Any]]:
        return [s for s in state.subscribers.values() if str(s.get(field)) == value]

    @app.get("/subscriber/imsi/{imsi}")
    def subscriber_by_imsi(imsi: str) -> Any:
        with state.lock:
            found = find("imsi", imsi)
            return dict(found[0]) if len(found) == 1 else None

    @app.get("/subscriber/msisdn/{msisdn}")
    def subscriber_by_msisdn(msisdn: str) -> Any:
        with state.lock:
            found = find("msisdn", msisdn)
            return dict(found[0]) if len(found) == 1 else None  # several: null as well

    @app.get("/subscriber/{subscriber_id}")
    def get_subscriber(subscriber_id: str) -> Any:
        with state.lock:
            key = _int_id(subscriber_id)
            record = state.subscribers.get(key) if key is not None else None
            return dict(record) if record else None

    @app.patch("/subscriber/{subscriber_id}")
    async def patch_subscriber(subscriber_id: str, request: Request) -> Any:
        body = _strip_plus(await request.json())
        if isinstance(body, JSONResponse):
            return body
        with state.lock:
            key = _int_id(subscriber_id)
            record = state.subscribers.get(key) if key is not None else None
            if record is None:
                return None
            record.update({k: v for k, v in body.items() if k in record})
            record["last_modified"] = _now()
            return dict(record)

    # ------------------------------------------------------------------ Diameter push

    @app.put("/push/clr/{imsi}")
    async def push_clr(imsi: str, request: Request) -> Any:
        body = await request.json()
        peer = body.get("diameterPeer")
        with state.lock:
            if peer not in state.connected_peers:
                return JSONResponse({"result": f"Failed queueing CLR to {peer}"}, 400)
            state.clr.append({"imsi": imsi, **body})
            for sub in find("imsi", imsi):
                if sub.get("serving_mme") == body.get("DestinationHost"):
                    sub.update(serving_mme=None, serving_mme_realm=None, serving_mme_peer=None)
            return {"result": f"Successfully queued CLR to {peer}"}

    # ------------------------------------------------------------------ the network side

    @app.post("/standin/attach/{imsi}")
    async def attach(imsi: str, request: Request) -> Any:
        """An MME's Update-Location reached the HSS (what PyHSS's Diameter service records)."""
        body = await request.json()
        with state.lock:
            found = find("imsi", imsi)
            if not found:
                return JSONResponse({"result": "unknown IMSI"}, 404)
            found[0].update(
                serving_mme=body["mme"],
                serving_mme_realm=body.get("realm", "epc.example"),
                serving_mme_peer=f"{body.get('peer', body['mme'])};hss01",
                serving_mme_timestamp=_now(),
            )
            return {"result": "attached"}

    @app.get("/standin/clr")
    def clr_log() -> list[dict[str, Any]]:
        with state.lock:
            return list(state.clr)

    return app
