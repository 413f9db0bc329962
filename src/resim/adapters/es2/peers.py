"""Which SM-DP+ a client certificate belongs to (ES2+ over mutual TLS, SGP.22 2.6.6).

The TLS layer has already verified the certificate against the client CA
bundle (``RESIM_API_TLS_CLIENT_CA_FILE``); this module only says which of the
configured SM-DP+ peers (:class:`resim.settings.Es2CallbackClient`) it is:
by the SHA-256 fingerprint of the DER certificate, by its subject name, or by
a DNS name or URI in its subject alternative names. A certificate that
matches no entry is no one (the callback is refused), even though the CA
issued it: a CA may serve many parties.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from resim.services.ports import CallbackPeer

CLIENT_CERTIFICATE = "client-certificate"


class ClientEntry(Protocol):
    """One configured peer (``resim.settings.Es2CallbackClient`` is one)."""

    @property
    def requester_id(self) -> str: ...
    @property
    def sha256(self) -> str | None: ...
    @property
    def subject(self) -> str | None: ...
    @property
    def san(self) -> str | None: ...
    @property
    def brands(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class _Rule:
    requester_id: str
    brands: frozenset[str] | None
    sha256: str | None
    subject: x509.Name | None
    san: str | None


class CertificatePeers:
    """Maps a verified client certificate (PEM) to a :class:`CallbackPeer`.

    The first of ``clients`` that matches wins. Raises ValueError at construction for a
    subject that is not an RFC 4514 name.
    """

    def __init__(self, clients: Iterable[ClientEntry]) -> None:
        self._rules = tuple(
            _Rule(
                requester_id=client.requester_id,
                brands=frozenset(client.brands) if client.brands else None,
                sha256=client.sha256.replace(":", "").lower() if client.sha256 else None,
                subject=x509.Name.from_rfc4514_string(client.subject) if client.subject else None,
                san=client.san,
            )
            for client in clients
        )

    def __bool__(self) -> bool:
        return bool(self._rules)

    def identify(self, cert_pem: str) -> CallbackPeer | None:
        """The peer ``cert_pem`` stands for, or None (unknown, or not a certificate)."""
        try:
            cert = x509.load_pem_x509_certificate(cert_pem.encode("ascii"))
        except ValueError:
            return None
        fingerprint = cert.fingerprint(hashes.SHA256()).hex()
        names = _alternative_names(cert)
        for rule in self._rules:
            if (
                (rule.sha256 is not None and rule.sha256 == fingerprint)
                or (rule.subject is not None and rule.subject == cert.subject)
                or (rule.san is not None and rule.san.lower() in names)
            ):
                return CallbackPeer(rule.requester_id, CLIENT_CERTIFICATE, rule.brands)
        return None


def _alternative_names(cert: x509.Certificate) -> frozenset[str]:
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return frozenset()
    values = sans.get_values_for_type(x509.DNSName) + sans.get_values_for_type(
        x509.UniformResourceIdentifier
    )
    return frozenset(v.lower() for v in values)


def fingerprint_of(cert_pem: bytes) -> str:
    """The SHA-256 fingerprint of a PEM certificate, as RESIM_SMDP_CALLBACK_CLIENTS takes it."""
    return x509.load_pem_x509_certificate(cert_pem).fingerprint(hashes.SHA256()).hex()
