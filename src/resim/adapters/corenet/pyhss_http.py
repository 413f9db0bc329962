"""PyHSS's REST API as resim uses it: requests, its quirks, and error classes.

PyHSS (the open-source Python HSS) keeps its subscribers behind a Flask-RESTX
API. What this module knows about that API was learnt against PyHSS 2.0.0
running here (its ``apiService``, SQLite back end):

- Every object answers 200, also when it does not exist: an unknown IMSI, id
  or number gives the body ``null`` (the lookup's ``ValueError`` falls through
  PyHSS's error handler, which then returns nothing). So ``null`` is "absent".
- ``GET /subscriber/msisdn/<digits>`` also answers ``null`` when *several*
  subscribers hold the number: ``subscriber.msisdn`` is not unique there.
  resim enforces uniqueness itself (see ``pyhss.py``).
- A number is stored without ``+`` (PyHSS strips it on PUT and PATCH). It is
  cleared with the empty string: a PATCH with ``"msisdn": null`` is a 500.
- ``PUT /auc/`` answers with the whole record *including Ki and OPc*; GETs
  and PATCHes leave the keys out (unless the operator set
  ``enable_insecure_auc``). No answer body is ever logged or put in an error
  message here, so keys cannot leak through this module.
- Writes need the ``Provisioning-Key`` header when the HSS sets
  ``lock_provisioning``; a wrong key is 401 ``{"Result": "Unauthorized ..."}``.
- Database errors (a duplicate IMSI, say) are 400 ``{"result": "Failed",
  "reason": ...}``; the reason quotes the SQL and its parameters, so it is
  not repeated either; other failures are 500 with the same shape.
- ``PUT /push/clr/<imsi>`` asks the Diameter service to send a
  Cancel-Location-Request to an MME; 400 when the named Diameter peer is not
  connected.

Errors raised (``resim.errors.ExternalError``, codes from ``rules``): cannot
connect, timeouts and 5xx are ``CORE_UNAVAILABLE`` (retryable); 401/403 are
``CORE_REJECTED`` (permanent: the provisioning key is wrong); other 4xx are
``CORE_REJECTED``; a body that is not JSON is ``CORE_PROTOCOL_ERROR``.
"""

from __future__ import annotations

from typing import Any

import httpx

from resim.adapters.corenet import rules
from resim.errors import ExternalError

JsonObject = dict[str, Any]


class PyHssApi:
    """One HTTP client for one PyHSS; thread-safe (httpx.Client is)."""

    def __init__(
        self,
        base_url: str,
        *,
        provisioning_key: str | None = None,
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Provisioning-Key": provisioning_key} if provisioning_key else {}
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------ objects

    def subscriber_by_imsi(self, imsi: str) -> JsonObject | None:
        return self._object("GET", f"/subscriber/imsi/{imsi}", what="subscriber lookup")

    def subscriber_by_msisdn(self, digits: str) -> JsonObject | None:
        """The one subscriber holding ``digits``; None when nobody *or several* do."""
        return self._object("GET", f"/subscriber/msisdn/{digits}", what="number lookup")

    def create_subscriber(self, body: JsonObject) -> JsonObject | None:
        return self._object("PUT", "/subscriber/", json=body, what="subscriber create")

    def update_subscriber(self, subscriber_id: int, body: JsonObject) -> JsonObject | None:
        return self._object(
            "PATCH", f"/subscriber/{subscriber_id}", json=body, what="subscriber update"
        )

    def auc(self, auc_id: int) -> JsonObject | None:
        return self._object("GET", f"/auc/{auc_id}", what="AuC lookup")

    def auc_by_imsi(self, imsi: str) -> JsonObject | None:
        return self._object("GET", f"/auc/imsi/{imsi}", what="AuC lookup")

    def create_auc(self, body: JsonObject) -> int:
        """Load a SIM's keys; returns the new ``auc_id``. The answer echoes the
        keys, so only the id is kept."""
        answer = self._object("PUT", "/auc/", json=body, what="AuC create")
        auc_id = answer.get("auc_id") if answer else None
        if not isinstance(auc_id, int):
            raise _protocol("AuC create answered without an auc_id")
        return auc_id

    def update_auc(self, auc_id: int, body: JsonObject) -> None:
        self._object("PATCH", f"/auc/{auc_id}", json=body, what="AuC update")

    def push_clr(self, imsi: str, body: JsonObject) -> None:
        """Queue a Cancel-Location-Request (TS 29.272 section 5.2.1.2) to an MME.

        PyHSS answers 400 when the MME's Diameter peer is not connected to it
        right now: retryable (``CORE_UNAVAILABLE``), as the peer reconnects."""
        try:
            self._object("PUT", f"/push/clr/{imsi}", json=body, what="Cancel-Location")
        except ExternalError as exc:
            if exc.code != rules.REJECTED or "HTTP 400" not in exc.message:
                raise
            raise rules.unavailable(
                "PyHSS could not queue the Cancel-Location: MME not connected"
            ) from exc

    # ------------------------------------------------------------ the transport

    def _object(
        self, method: str, path: str, *, what: str, json: JsonObject | None = None
    ) -> JsonObject | None:
        try:
            answer = self._http.request(method, path, json=json)
        except httpx.TimeoutException as exc:
            raise rules.unavailable(f"PyHSS {what} timed out") from exc
        except httpx.TransportError as exc:
            raise rules.unavailable(f"PyHSS cannot be reached ({type(exc).__name__})") from exc
        if answer.status_code >= 500:
            raise rules.unavailable(f"PyHSS {what} failed with HTTP {answer.status_code}")
        if answer.status_code in (401, 403):
            raise rules.rejected(
                f"PyHSS refused the {what} (HTTP {answer.status_code}): check "
                "RESIM_PYHSS_PROVISIONING_KEY"
            )
        if answer.status_code >= 400:
            # The body's "reason" quotes SQL and its parameters (keys, numbers):
            # say only which call and what status.
            raise rules.rejected(f"PyHSS refused the {what} (HTTP {answer.status_code})")
        try:
            body = answer.json()
        except ValueError as exc:
            raise _protocol(f"PyHSS answered the {what} with something that is not JSON") from exc
        if body is None:
            return None
        if not isinstance(body, dict):
            raise _protocol(f"PyHSS answered the {what} with a {type(body).__name__}")
        return body


def _protocol(message: str) -> ExternalError:
    return ExternalError(message, retryable=False, code=rules.PROTOCOL_ERROR)
