"""Ports to the mobile core network (HLR/HSS) and to geolocation."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

# ---------------------------------------------------------------- core network


class CoreNetwork(Protocol):
    """The HLR/HSS/UDM as resim needs it. Every operation is idempotent.

    See shared/reference/core-network.md. ``move_msisdn`` moves the number from
    ``old_imsi`` (may be None for a first binding) to ``new_imsi`` and leaves no
    window visible to callers in which two IMSIs or none own the number: on a
    partial failure it restores the old binding before raising.
    """

    def provision_imsi(self, *, imsi: str) -> None:
        """Make sure a subscriber record exists for ``imsi`` (no MSISDN yet)."""
        ...

    def move_msisdn(self, *, msisdn: str, new_imsi: str, old_imsi: str | None) -> None: ...

    def suspend_imsi(self, *, imsi: str) -> None:
        """Bar the IMSI (no service) but keep its record; reversible by ``resume_imsi``.

        A device registered with the IMSI is dropped from the network now, not at
        its next location update (``rules.detaches``; osmo-hlr: Delete-Subscriber-
        Data to the serving VLR/SGSN), and may not register again while barred.
        """
        ...

    def resume_imsi(self, *, imsi: str) -> None: ...

    def retire_imsi(self, *, imsi: str) -> None:
        """Disable the IMSI for good and force it off the network (as ``suspend_imsi``)."""
        ...

    def apply_post_swap_holds(
        self,
        *,
        imsi: str,
        sms_hold_until: dt.datetime | None,
        port_out_block_until: dt.datetime | None,
    ) -> None:
        """SEC-06: set the IMSI's SMS hold and port-out block to exactly these times.

        Idempotent (the same values again change nothing); None clears a hold.
        A core network without the feature raises a permanent ExternalError
        (``CORE_HOLDS_UNSUPPORTED``) rather than ignoring it.
        """
        ...

    def msisdn_of(self, *, imsi: str) -> str | None: ...

    def imsi_of(self, *, msisdn: str) -> str | None: ...

    def is_enabled(self, *, imsi: str) -> bool: ...

    def attached(self, *, imsi: str) -> bool:
        """Whether a device with ``imsi`` has registered with the network (a location
        update reached the HLR) since the record was made.

        A new SIM's IMSI registering proves the profile is installed on a device:
        the reconcile job (services/provisioning/reconcile.py) asks this when the SM-DP+'s
        install callback may have been lost. False for an IMSI without a record.
        A core network that cannot tell raises a permanent ExternalError
        (``CORE_ATTACH_UNSUPPORTED``) rather than answering False.
        """
        ...

    def cancel_location(self, *, imsi: str) -> bool:
        """A network refresh: make the network elements serving ``imsi`` drop it,
        so the phone registers afresh (for a new SIM that will not attach, stuck
        on a stale registration). Access is not changed.

        True when a serving element was told, False when none serves the IMSI
        (nothing to refresh: the phone has not reached the network). Unknown:
        ``CORE_UNKNOWN_IMSI``; retired: ``CORE_IMSI_RETIRED``. A core network that
        cannot send a Cancel-Location raises a permanent ExternalError
        (``CORE_REFRESH_UNSUPPORTED``) rather than pretending.
        """
        ...


# ---------------------------------------------------------------- geolocation


class Geolocator(Protocol):
    """Where a source address is, as far as the operator's data says (SEC-07 new_country)."""

    def country_of(self, address: str) -> str | None:
        """The ISO 3166-1 alpha-2 code (upper case) of ``address``, or None when unknown.

        Never raises for a malformed or private address (None); an address is
        personal data and is never logged.
        """
        ...
