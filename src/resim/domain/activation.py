"""The eSIM Activation Code (GSMA SGP.22 section 4.1), built, parsed and rendered.

Format: ``1$<SM-DP+ address>$<MatchingID>[$<SM-DP+ OID>[$1]]``, with ``LPA:`` in
front when it is put in a QR code. ``$`` separates the fields and can never
appear inside one.

Two levels of validation, on purpose:

* **Building** (``ActivationCode(...)``) is strict, because resim is the author:
  the address is a fully qualified host name (two or more LDH labels, no scheme,
  port, path or trailing dot, not an IP address); the MatchingID uses only
  ``0-9 A-Z -`` so the QR code stays in alphanumeric mode and small; the OID is
  dotted decimal.
* **Reading what a peer made** (:func:`parse_activation_code`,
  :meth:`ActivationCode.from_peer`, e.g. a MatchingID the SM-DP+ generated in
  confirmOrder) is liberal but safe: any host name of LDH labels (one label and
  a trailing dot allowed), and a MatchingID of any printable ASCII except ``$``
  and space, or none at all: SGP.22 4.1 allows an empty MatchingID (its own
  example ``1$SMDP.GSMA.COM$$1.3.6.1.4.1.31746``; the SM-DP+ then finds the
  order by the EID). What is never accepted, in either mode: ``$``, whitespace,
  control or non-ASCII characters in a field, an empty address, a code of
  255 characters or more, a format other than ``1``, and an ambiguous
  confirmation-code flag (anything but ``1`` in the fifth field; one LPA reads an
  empty fifth field as "required"). resim never *makes* an empty MatchingID
  (strict mode refuses one): without it the code is the SM-DP+ address alone.

Rendering never emits an empty trailing field. When a confirmation code is
required but there is no OID, the OID field is empty and the flag follows it:
``1$SMDP.EXAMPLE.COM$K2D7Q-8WZ3M$$1``; this matches the example in SGP.22 4.1
(``1$SMDP.GSMA.COM$04386-AGYFT-A74Y8-3F815$$1``) and the empty field is not the
last one.

The MatchingID is a secret (SEC-10, SEC-11): ``repr()`` hides it and error
messages never echo it or the text they were given.
"""

from __future__ import annotations

import random
import re
import secrets
import string
from dataclasses import KW_ONLY, InitVar, dataclass, field
from urllib.parse import quote

from resim.errors import InvalidInput

AC_FORMAT = "1"
QR_PREFIX = "LPA:"
IOS_INSTALL_PREFIX = "https://esimsetup.apple.com/esim_qrcode_provisioning?carddata="
MAX_CODE_LENGTH = 254  # "keep the code under 255 characters"; counted without "LPA:"

MATCHING_ID_ALPHABET = string.digits + string.ascii_uppercase
MATCHING_ID_GROUPS = 4
MATCHING_ID_GROUP_LENGTH = 5

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# All patterns are used with fullmatch ('$' would accept a trailing newline).
# Strict: two or more labels, the last one not all digits (so not an IPv4 address).
_STRICT_HOST = re.compile(rf"(?:{_LABEL}\.)+(?![0-9]+\Z){_LABEL}")
# Liberal: one or more labels, an optional trailing dot (the DNS root).
_PEER_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_STRICT_MATCHING_ID = re.compile(r"[0-9A-Z-]+")
# Printable ASCII without space and '$'.
_PEER_MATCHING_ID = re.compile(r"[\x21-\x23\x25-\x7e]+")
_OID = re.compile(r"[0-2](?:\.(?:0|[1-9][0-9]*))+")
_MAX_HOST_LENGTH = 253


@dataclass(frozen=True)
class ActivationCode:
    """One Activation Code. Construction validates strictly (see the module docstring).

    Use :meth:`from_peer` for values an SM-DP+ or another system produced.
    """

    smdp_address: str
    matching_id: str = field(repr=False)
    smdp_oid: str | None = None
    confirmation_code_required: bool = False
    _: KW_ONLY
    _peer: InitVar[bool] = False

    def __post_init__(self, _peer: bool) -> None:
        host_pattern = _PEER_HOST if _peer else _STRICT_HOST
        id_pattern = _PEER_MATCHING_ID if _peer else _STRICT_MATCHING_ID
        address = self.smdp_address
        if not address:
            raise InvalidInput("SM-DP+ address is empty")
        if "$" in address:
            raise InvalidInput("SM-DP+ address must not contain '$'")
        if "://" in address or "/" in address:
            raise InvalidInput("SM-DP+ address must be a host name without scheme or path")
        if ":" in address:
            raise InvalidInput("SM-DP+ address must be a host name without port")
        if len(address.rstrip(".")) > _MAX_HOST_LENGTH or not host_pattern.fullmatch(address):
            raise InvalidInput("SM-DP+ address is not a valid host name")
        if not self.matching_id and not _peer:
            raise InvalidInput("matching ID is empty")
        if "$" in self.matching_id:
            raise InvalidInput("matching ID must not contain '$'")
        if self.matching_id and not id_pattern.fullmatch(self.matching_id):
            if _peer:
                raise InvalidInput("matching ID contains spaces, control or non-ASCII characters")
            raise InvalidInput("matching ID must use only 0-9, A-Z and '-'")
        if self.smdp_oid is not None and not _OID.fullmatch(self.smdp_oid):
            raise InvalidInput("SM-DP+ OID must be a dotted decimal object identifier")
        if len(self.text) > MAX_CODE_LENGTH:
            raise InvalidInput(
                f"activation code must be shorter than {MAX_CODE_LENGTH + 1} characters"
            )

    @classmethod
    def from_peer(
        cls,
        smdp_address: str,
        matching_id: str,
        smdp_oid: str | None = None,
        confirmation_code_required: bool = False,
    ) -> ActivationCode:
        """Build from values another system made (liberal but safe validation)."""
        return cls(smdp_address, matching_id, smdp_oid, confirmation_code_required, _peer=True)

    @property
    def text(self) -> str:
        """The Activation Code itself: ``1$addr$MID[$OID[$1]]`` (MID may be empty:
        ``1$addr$`` has three fields, the third empty, as SGP.22 4.1 reads it)."""
        fields = [AC_FORMAT, self.smdp_address, self.matching_id]
        if self.confirmation_code_required:
            # The OID field may be empty here: it is not the last field.
            fields += [self.smdp_oid or "", "1"]
        elif self.smdp_oid:
            fields.append(self.smdp_oid)
        return "$".join(fields)

    @property
    def qr_payload(self) -> str:
        """What goes into the QR code: ``LPA:`` + :attr:`text`."""
        return QR_PREFIX + self.text

    @property
    def ios_install_url(self) -> str:
        """The iOS 17.4+ one-tap install link (Apple's esimsetup universal link)."""
        return IOS_INSTALL_PREFIX + quote(self.qr_payload, safe="")

    def __repr__(self) -> str:
        return (
            f"ActivationCode(smdp_address={self.smdp_address!r}, matching_id='***', "
            f"smdp_oid={self.smdp_oid!r}, "
            f"confirmation_code_required={self.confirmation_code_required!r})"
        )

    __str__ = __repr__


def parse_activation_code(text: str) -> ActivationCode:
    """Parse an Activation Code a peer made, with or without the ``LPA:`` prefix.

    Surrounding whitespace (a scanner's trailing newline) is ignored and the prefix
    is matched case-insensitively. A trailing empty OID field (``1$addr$MID$``) is
    read as "no OID". Validation is the liberal one of :meth:`ActivationCode.from_peer`.
    Raises :class:`InvalidInput`; the message never echoes the input.
    """
    value = text.strip()
    if value[: len(QR_PREFIX)].upper() == QR_PREFIX:
        value = value[len(QR_PREFIX) :]
    if len(value) > MAX_CODE_LENGTH:
        raise InvalidInput(f"activation code must be shorter than {MAX_CODE_LENGTH + 1} characters")
    fields = value.split("$")
    if fields[0] != AC_FORMAT:
        raise InvalidInput(
            "activation code format is not '1' (or the text is not an activation code)"
        )
    if not 3 <= len(fields) <= 5:
        raise InvalidInput("activation code must have 3 to 5 '$'-separated fields")
    address, matching_id = fields[1], fields[2]
    oid = fields[3] if len(fields) > 3 and fields[3] else None
    required = False
    if len(fields) == 5:
        if fields[4] != "1":
            raise InvalidInput("confirmation-code flag must be '1' when present")
        required = True
    return ActivationCode.from_peer(address, matching_id, oid, required)


def generate_matching_id(rng: random.Random | None = None) -> str:
    """A fresh MatchingID such as ``K2D7Q-8WZ3M-P4HXA-N6TRB`` (about 103 random bits).

    Uses :mod:`secrets` unless ``rng`` is given (tests pass a seeded ``Random``
    for reproducible ids; never do that in production).
    """
    choose = secrets.choice if rng is None else rng.choice
    groups = (
        "".join(choose(MATCHING_ID_ALPHABET) for _ in range(MATCHING_ID_GROUP_LENGTH))
        for _ in range(MATCHING_ID_GROUPS)
    )
    return "-".join(groups)
