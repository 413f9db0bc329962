"""``resim keys rotate``: re-encrypt every secret at rest under the first key (SEC-10, SEC-11).

What is encrypted, found rather than listed (a list would drift):

* every column whose type is :class:`~resim.adapters.db.types.EncryptedText`
  in the application's metadata (subscriber contact data and TOTP seeds, SIM
  Ki/OPc, staff e-mail and TOTP seeds, and whatever is added later);
* ``replacement_request.activation_code_enc`` (a Fernet token made by the
  services, not by the column type);
* ``job.payload["sealed"]`` (recipient, names and every value of a mail or
  SMS job, see ``notify.message_payload``) and ``job.payload["secret_context"]``
  (a reissue's old MatchingID; one-time codes and "not me" links of jobs
  queued before payloads were sealed).

``replacement_request.matching_id`` is an EncryptedText column: found above.

A value already readable with the first key alone is left as it is, so the
command is resumable: it works in batches of rows, one transaction each, and a
second run after an interruption only does what is left. Values written before
a column was encrypted (clear text) are encrypted. Raw values are read and
written with the column type bypassed, so nothing is decrypted into a log or
an error. A value that no configured key opens stops the run with
:class:`~resim.adapters.crypto.SecretUnreadable` naming the table and column.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from resim.adapters.crypto import SecretBox, SecretUnreadable
from resim.services.context import ServiceContext

FERNET_PREFIX = "gAAAAA"
BATCH = 500


@dataclass
class RotationReport:
    scanned: int = 0
    rotated: int = 0
    encrypted_clear: int = 0
    current: int = 0
    by_column: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"{self.scanned} values scanned: {self.rotated} re-encrypted, "
            f"{self.encrypted_clear} clear values encrypted, {self.current} already current"
        )


def _new_value(box: SecretBox, raw: str, report: RotationReport) -> str | None:
    report.scanned += 1
    if not raw.startswith(FERNET_PREFIX):
        report.encrypted_clear += 1
        return box.encrypt(raw)
    if box.is_current(raw):
        report.current += 1
        return None
    report.rotated += 1
    return box.rotate(raw)


def rotate_all(
    ctx: ServiceContext, *, progress: Callable[[str], None] = lambda _line: None
) -> RotationReport:
    """Re-encrypt everything under ``ctx.secrets``' first key; see the module docstring."""
    box = ctx.secrets
    report = RotationReport()
    with ctx.uow() as uow:
        places = uow.sealed.places()
    for place in places:
        done = 0
        last: tuple[Any, ...] | None = None
        while True:
            with ctx.uow() as uow:
                rows = uow.sealed.batch(place, after=last, limit=BATCH)
            if not rows:
                break
            last = rows[-1][0]
            updates: list[tuple[tuple[Any, ...], Any]] = []
            for key, stored in rows:
                value: Any
                try:
                    if place.json_key is not None:
                        value = _rotate_json(box, stored, place.json_key, report)
                    else:
                        value = _new_value(box, str(stored), report)
                except SecretUnreadable:
                    raise SecretUnreadable(
                        f"{place.name}: a stored value opens with none of the configured keys "
                        "(keep the old key in RESIM_SECRET_KEYS until the rotation is done)"
                    ) from None
                if value is not None:
                    updates.append((key, value))
            if updates:
                with ctx.uow() as uow:
                    uow.sealed.rewrite(place, updates)
                    uow.commit()
            done += len(rows)
            report.by_column[place.name] = report.by_column.get(place.name, 0) + len(updates)
            progress(f"{place.name}: {done} rows checked, {len(updates)} rewritten in this batch")
    return report


def _rotate_json(
    box: SecretBox, payload: Any, key: str, report: RotationReport
) -> dict[str, Any] | None:
    if isinstance(payload, str):  # some drivers hand JSON back as text
        payload = json.loads(payload)
    if not isinstance(payload, dict) or payload.get(key) is None:
        return None
    value = payload[key]
    if not isinstance(value, str):  # a context stored in clear by old code
        value = json.dumps(value)
    new = _new_value(box, value, report)
    return None if new is None else {**payload, key: new}
