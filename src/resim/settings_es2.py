"""One SM-DP+ that may call back (an entry of ``RESIM_SMDP_CALLBACK_CLIENTS``).

Part of :class:`resim.settings.Settings`, which re-exports it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Es2CallbackClient(BaseModel):
    """One SM-DP+ allowed to call ``handleDownloadProgressInfo`` over mutual TLS.

    Its certificate (already verified against RESIM_API_TLS_CLIENT_CA_FILE) is
    recognised by exactly one of: ``sha256`` (the fingerprint of the DER
    certificate, hex, colons allowed), ``subject`` (an RFC 4514 name such as
    ``CN=smdp.example,O=Example``) or ``san`` (a DNS name or URI in its subject
    alternative names). Its callbacks must name ``requester_id`` as
    functionRequesterIdentifier, and may concern only ICCIDs of ``brands``
    (brand ids; empty: every brand).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    requester_id: str = Field(min_length=1, max_length=128)
    sha256: str | None = None
    subject: str | None = None
    san: str | None = None
    brands: tuple[str, ...] = ()

    @field_validator("sha256")
    @classmethod
    def _fingerprint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        digits = value.replace(":", "").strip().lower()
        if len(digits) != 64 or any(c not in "0123456789abcdef" for c in digits):
            raise ValueError("sha256 must be 64 hex digits (colons allowed)")
        return digits

    @model_validator(mode="after")
    def _one_way_to_recognise(self) -> Es2CallbackClient:
        given = [v for v in (self.sha256, self.subject, self.san) if v]
        if len(given) != 1:
            raise ValueError("each client names exactly one of sha256, subject or san")
        return self
