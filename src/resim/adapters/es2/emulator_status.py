"""EmulatorStatusQuery: the SmdpStatusQuery port on resim's SM-DP+ emulator (emulator only).

ES2+ has no status query (see :class:`resim.services.ports.SmdpStatusQuery`),
so this asks the emulator's admin endpoint ``GET /emulator/profiles/{iccid}``,
which a real SM-DP+ does not have. The composition root builds it only with
``RESIM_SMDP_STATUS_QUERY=emulator`` (refused in production).

Errors: transport problems and HTTP 5xx -> ``ExternalError(SMDP_UNAVAILABLE,
retryable)``; 404 -> ``ExternalError(SMDP_PROFILE_UNKNOWN)``; anything else
unexpected -> ``ExternalError(SMDP_PROTOCOL_MISMATCH)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from resim.adapters.es2.errors import smdp_unavailable
from resim.domain.identifiers import normalize_iccid
from resim.errors import ExternalError
from resim.services.ports import InstallState

if TYPE_CHECKING:
    from resim.services.ports import SmdpStatusQuery

# SGP.22 profile states as the emulator names them (emulator.model.ProfileState).
_STATES: dict[str, InstallState] = {"Installed": "installed", "Error": "failed"}
_KNOWN = {"Available", "Allocated", "Linked", "Confirmed", "Released", "Downloaded",
          "Installed", "Error", "Unavailable"}  # fmt: skip


def install_state_of(state: str) -> InstallState:
    """``Installed`` -> installed, ``Error`` -> failed, any earlier state -> not_installed."""
    return _STATES.get(state, "not_installed")


class EmulatorStatusQuery:
    def __init__(
        self, base_url: str, *, timeout: float = 5.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def install_state(self, *, iccid: str) -> InstallState:
        clean = normalize_iccid(iccid)
        try:
            resp = self._http.get(f"/emulator/profiles/{clean}")
        except httpx.HTTPError as exc:
            raise smdp_unavailable("status query", type(exc).__name__) from None
        if resp.status_code >= 500:
            raise smdp_unavailable("status query", f"HTTP {resp.status_code}")
        if resp.status_code == 404:
            raise ExternalError(
                "the SM-DP+ does not know that ICCID", retryable=False, code="SMDP_PROFILE_UNKNOWN"
            )
        try:
            state = resp.json()["state"] if resp.status_code == 200 else None
        except (ValueError, KeyError, TypeError):
            state = None
        if state not in _KNOWN:
            raise ExternalError(
                f"unexpected answer to the emulator's status query (HTTP {resp.status_code});"
                " RESIM_SMDP_STATUS_QUERY=emulator works with resim's emulator only",
                retryable=False,
                code="SMDP_PROTOCOL_MISMATCH",
            )
        return install_state_of(state)


if TYPE_CHECKING:

    def _conforms(adapter: EmulatorStatusQuery) -> SmdpStatusQuery:
        return adapter
