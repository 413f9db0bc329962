"""The semantics every CoreNetwork adapter shares, as pure functions.

Each adapter (built-in table, in-memory fake, osmo-hlr) reads the records an
operation touches, asks this module what to do, and then does it in its own
way (one SQL transaction, one lock, a sequence of CTRL commands). So the
decisions and the error codes are identical everywhere, and the contract suite
in ``tests/contract/test_corenet_contract.py`` checks them for each adapter.

Invariant kept by every adapter: an MSISDN is bound to at most one IMSI, a
retired IMSI holds no MSISDN, and an IMSI holds at most one MSISDN. Hence a
live line (a bound MSISDN) is always on exactly one active-or-suspended SIM:

- ``move_msisdn`` refuses to bind onto a retired IMSI and onto an IMSI that
  already holds another number (binding would silently orphan that number);
- ``retire_imsi`` refuses while the IMSI still holds a number: the number has
  to move to the replacement SIM first (there is no "release the number"
  operation in the port; terminating a line is a separate, future use case).

Error codes (all :class:`resim.errors.ExternalError`):

    CORE_UNKNOWN_IMSI            no record for the IMSI (every op but provision)
    CORE_MSISDN_CONFLICT         the number is on a third IMSI (neither old nor new)
    CORE_IMSI_RETIRED            bind onto, resume or put holds on a retired IMSI
    CORE_IMSI_HAS_OTHER_MSISDN   the target IMSI already holds a different number
    CORE_MSISDN_STILL_BOUND      retire refused: the IMSI still holds its number
    CORE_BUSY          (retry)   lock contention did not clear in time
    CORE_UNAVAILABLE   (retry)   the database or the HLR cannot be reached
    CORE_REJECTED                the HLR refused a command for another reason
    CORE_PROTOCOL_ERROR          the HLR answered something we cannot parse
    CORE_ATTACH_UNSUPPORTED      this core network cannot tell whether an IMSI attached
    CORE_REFRESH_UNSUPPORTED     this core network cannot send a Cancel-Location on request

Malformed identifiers are caller bugs and raise :class:`resim.errors.InvalidInput`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from resim.errors import ExternalError, InvalidInput

UNKNOWN_IMSI = "CORE_UNKNOWN_IMSI"
MSISDN_CONFLICT = "CORE_MSISDN_CONFLICT"
IMSI_RETIRED = "CORE_IMSI_RETIRED"
IMSI_HAS_OTHER_MSISDN = "CORE_IMSI_HAS_OTHER_MSISDN"
MSISDN_STILL_BOUND = "CORE_MSISDN_STILL_BOUND"
BUSY = "CORE_BUSY"
UNAVAILABLE = "CORE_UNAVAILABLE"
REJECTED = "CORE_REJECTED"
PROTOCOL_ERROR = "CORE_PROTOCOL_ERROR"
ATTACH_UNSUPPORTED = "CORE_ATTACH_UNSUPPORTED"
REFRESH_UNSUPPORTED = "CORE_REFRESH_UNSUPPORTED"

# Operation names written to the history (dotted, like log events).
EV_PROVISIONED = "imsi.provisioned"
EV_BOUND = "msisdn.bound"
EV_UNBOUND = "msisdn.unbound"
EV_SUSPENDED = "imsi.suspended"
EV_RESUMED = "imsi.resumed"
EV_RETIRED = "imsi.retired"
EV_HOLDS = "imsi.holds_applied"
EV_ATTACHED = "imsi.attached"
EV_DETACHED = "imsi.detached"
EV_REFRESHED = "imsi.refreshed"  # a Cancel-Location on request (network refresh)

_IMSI = re.compile(r"^[0-9]{6,15}$")
# E.164 as resim stores it: "+", a country code that never starts with 0, at
# most 15 digits in all (ITU-T E.164 section 6.1).
_MSISDN = re.compile(r"^\+[1-9][0-9]{1,14}$")


@dataclass(frozen=True)
class CoreSubscriber:
    """One subscriber record as an adapter reports it."""

    imsi: str
    msisdn: str | None
    enabled: bool
    retired: bool
    sms_hold_until: dt.datetime | None = None
    port_out_block_until: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    attached_at: dt.datetime | None = None  # first registration with the network

    @property
    def in_service(self) -> bool:
        return self.enabled and not self.retired


@dataclass(frozen=True)
class CoreEvent:
    """One line of the history: ``operation`` is one of the ``EV_*`` names."""

    imsi: str
    msisdn: str | None
    operation: str
    at: dt.datetime


@dataclass(frozen=True)
class MovePlan:
    """What ``move_msisdn`` must do. ``bind`` False means: already done."""

    bind: bool
    clear_imsi: str | None = None


NOOP = MovePlan(bind=False)


def check_imsi(imsi: str) -> str:
    if not isinstance(imsi, str) or not _IMSI.match(imsi):
        raise InvalidInput("IMSI must be 6 to 15 digits")
    return imsi


def check_msisdn(msisdn: str) -> str:
    if not isinstance(msisdn, str) or not _MSISDN.match(msisdn):
        raise InvalidInput("MSISDN must be in E.164 form, e.g. +4520123456")
    return msisdn


def check_aware(value: dt.datetime | None, field: str) -> dt.datetime | None:
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"{field} must be timezone-aware")
    return value.astimezone(dt.UTC)


def unknown_imsi(imsi: str) -> ExternalError:
    return ExternalError(f"IMSI {imsi} is not provisioned", retryable=False, code=UNKNOWN_IMSI)


def imsi_retired(imsi: str) -> ExternalError:
    return ExternalError(f"IMSI {imsi} is retired", retryable=False, code=IMSI_RETIRED)


def msisdn_conflict(msisdn: str, holder: str) -> ExternalError:
    return ExternalError(
        f"MSISDN {msisdn} is bound to IMSI {holder}, not to the given old IMSI",
        retryable=False,
        code=MSISDN_CONFLICT,
    )


def busy(what: str) -> ExternalError:
    return ExternalError(f"core network busy: {what}", retryable=True, code=BUSY)


def unavailable(what: str) -> ExternalError:
    return ExternalError(f"core network unavailable: {what}", retryable=True, code=UNAVAILABLE)


def rejected(what: str) -> ExternalError:
    return ExternalError(f"core network refused: {what}", retryable=False, code=REJECTED)


def attach_unsupported(adapter: str, why: str) -> ExternalError:
    return ExternalError(
        f"{adapter} cannot tell whether an IMSI attached: {why}",
        retryable=False,
        code=ATTACH_UNSUPPORTED,
    )


def plan_move(
    *,
    msisdn: str,
    new: CoreSubscriber | None,
    new_imsi: str,
    old: CoreSubscriber | None,
    old_imsi: str | None,
    holder: str | None,
) -> MovePlan:
    """Decide a move of ``msisdn`` to ``new_imsi``; ``holder`` is who has it now.

    ``new`` / ``old`` are the records read for ``new_imsi`` / ``old_imsi``
    (None if absent). The caller must hold whatever lock makes ``holder`` and
    the records current. A number that is on nobody is bound to ``new_imsi``
    even when an ``old_imsi`` is named: that is how a move interrupted after
    clearing the old IMSI (possible on an HLR without transactions) completes
    on retry.
    """
    if new is None:
        raise unknown_imsi(new_imsi)
    if old_imsi is not None and old is None:
        raise unknown_imsi(old_imsi)
    if holder == new_imsi:
        return NOOP
    if new.retired:
        raise imsi_retired(new_imsi)
    if holder is not None and holder != old_imsi:
        raise msisdn_conflict(msisdn, holder)
    if new.msisdn is not None:
        raise ExternalError(
            f"IMSI {new_imsi} already holds MSISDN {new.msisdn}",
            retryable=False,
            code=IMSI_HAS_OTHER_MSISDN,
        )
    return MovePlan(bind=True, clear_imsi=holder)


def require(sub: CoreSubscriber | None, imsi: str) -> CoreSubscriber:
    if sub is None:
        raise unknown_imsi(imsi)
    return sub


def needs_suspend(sub: CoreSubscriber) -> bool:
    """A retired IMSI is barred already: suspending it again changes nothing."""
    return sub.enabled and not sub.retired


def needs_resume(sub: CoreSubscriber) -> bool:
    if sub.retired:
        raise imsi_retired(sub.imsi)
    return not sub.enabled


def detaches(sub: CoreSubscriber) -> bool:
    """Whether taking ``sub``'s access away now must drop it from the network.

    Suspend, and retire of an IMSI still in service, take access away. If a
    device with the IMSI has registered, the serving network is told to drop
    it at once, not at its next location update: osmo-hlr sends GSUP
    Delete-Subscriber-Data to the VLR/SGSN it has on record (only when a flag
    goes from on to off); the built-in and fake cores, which have no radio
    network, write an ``imsi.detached`` event that a network integration reads.
    The caller has decided already that access goes away.
    """
    return sub.in_service and sub.attached_at is not None


def refreshes(sub: CoreSubscriber) -> bool:
    """Whether a network refresh of ``sub`` has anybody to tell; refuses a retired IMSI."""
    if sub.retired:
        raise imsi_retired(sub.imsi)
    return sub.attached_at is not None


def needs_retire(sub: CoreSubscriber) -> bool:
    if sub.retired:
        return False
    if sub.msisdn is not None:
        raise ExternalError(
            f"IMSI {sub.imsi} still holds MSISDN {sub.msisdn}; move the number first",
            retryable=False,
            code=MSISDN_STILL_BOUND,
        )
    return True


def needs_holds(
    sub: CoreSubscriber,
    sms_hold_until: dt.datetime | None,
    port_out_block_until: dt.datetime | None,
) -> bool:
    """Holds are set to exactly the given values (None clears one)."""
    if sub.retired:
        raise imsi_retired(sub.imsi)
    return (sub.sms_hold_until, sub.port_out_block_until) != (
        sms_hold_until,
        port_out_block_until,
    )


def refuse_holds(
    adapter: str,
    imsi: str,
    sms_hold_until: dt.datetime | None,
    port_out_block_until: dt.datetime | None,
) -> None:
    """For an HLR/HSS without post-swap holds: asking for none is fine, asking for one
    is refused for good (``CORE_HOLDS_UNSUPPORTED``), never skipped in silence (SEC-06)."""
    check_imsi(imsi)
    check_aware(sms_hold_until, "sms_hold_until")
    check_aware(port_out_block_until, "port_out_block_until")
    if sms_hold_until is None and port_out_block_until is None:
        return
    raise ExternalError(
        f"{adapter} cannot hold SMS or block port-out after a SIM swap; set the brand's "
        "sms_hold_hours and port_out_block_days to 0 or apply the holds in the SMSC/NPDB",
        retryable=False,
        code="CORE_HOLDS_UNSUPPORTED",
    )
