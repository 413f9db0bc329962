"""Reading osmo-hlr's subscriber records over its CTRL interface.

``subscriber.by-imsi-<IMSI>.info`` gives a record's number and network
access flags, ``...info-aud`` whether it has authentication keys, and
``subscriber.by-msisdn-<digits>.info`` who holds a number. An unknown
subscriber is no record (None); a record that is not the one asked for is a
protocol error.
"""

from __future__ import annotations

from dataclasses import dataclass

from resim.adapters.corenet import rules
from resim.adapters.corenet.osmo_ctrl import CtrlClient, CtrlError, parse_table
from resim.adapters.corenet.rules import CoreSubscriber
from resim.errors import ExternalError


@dataclass(frozen=True)
class Record:
    imsi: str
    msisdn: str | None  # E.164 with "+"
    cs: bool
    ps: bool
    has_auth: bool

    @property
    def retired(self) -> bool:
        return not self.cs and not self.ps and not self.has_auth

    def view(self) -> CoreSubscriber:
        return CoreSubscriber(
            imsi=self.imsi, msisdn=self.msisdn, enabled=self.cs or self.ps, retired=self.retired
        )


def read_record(ctrl: CtrlClient, imsi: str) -> Record | None:
    """The subscriber ``imsi`` as osmo-hlr holds it, or None when it has none."""
    base = f"subscriber.by-imsi-{imsi}"
    try:
        info = parse_table(ctrl.get(f"{base}.info"))
        has_auth = bool(parse_table(ctrl.get(f"{base}.info-aud")))
    except CtrlError as exc:
        if exc.code == rules.UNKNOWN_IMSI:
            return None
        raise
    if info.get("imsi") != imsi or "nam_cs" not in info or "nam_ps" not in info:
        raise ExternalError(
            f"osmo-hlr answered an unexpected record for {imsi}",
            retryable=False,
            code=rules.PROTOCOL_ERROR,
        )
    number = info.get("msisdn")
    return Record(
        imsi=imsi,
        msisdn=f"+{number}" if number else None,
        cs=info["nam_cs"] == "1",
        ps=info["nam_ps"] == "1",
        has_auth=has_auth,
    )


def holder_of(ctrl: CtrlClient, digits: str) -> str | None:
    """The IMSI holding the number ``digits`` (no "+"), or None."""
    try:
        info = parse_table(ctrl.get(f"subscriber.by-msisdn-{digits}.info"))
    except CtrlError as exc:
        if exc.code == rules.UNKNOWN_IMSI:
            return None
        raise
    return info.get("imsi")
