"""One error tree for resim, mapped to status codes only at the edges.

    ResimError                    code + human message; never carries a secret
    ├── DomainError               a rule of the domain refused the operation (4xx)
    │   ├── InvalidInput          malformed or out-of-range input (422)
    │   ├── NotFound              the object does not exist or is not visible (404)
    │   ├── Conflict              the object is in a state that forbids this (409)
    │   ├── InvalidTransition     the workflow table forbids this state change (409)
    │   ├── VerificationFailed    a wrong code or PIN (400; counted)
    │   ├── Refused               a policy or risk rule refused the request (403/409)
    │   ├── TooManyAttempts       back-off or a hard cap on failures or requests (429)
    │   ├── Unauthenticated       no valid credentials (401)
    │   └── PermissionDenied      valid credentials, but not for this (403)
    ├── ExternalError             a peer (SM-DP+, core network, SMTP) failed
    │   ├── retryable=True        transport errors, 5xx, "busy": the job backs off
    │   ├── retryable=False       the peer said no for good: the request fails
    │   ├── SinkError             a CAMARA notification sink failed (carries its HTTP status)
    │   └── Unavailable           resim's own database cannot serve this now (overload,
    │                             no connection, lock timeout): 503 with Retry-After
    └── ConfigurationError        the settings cannot work here; refused at start-up

Adapters classify vendor errors into ExternalError; services never see httpx,
smtplib or driver exceptions.
"""

from __future__ import annotations


class ResimError(Exception):
    """Base of every error resim raises on purpose.

    ``code`` is stable and machine readable (``REQUEST_NOT_FOUND``); ``message``
    is for humans and must never contain a secret.
    """

    code: str = "RESIM_ERROR"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class DomainError(ResimError):
    code = "DOMAIN_ERROR"


class InvalidInput(DomainError):
    code = "INVALID_INPUT"


class NotFound(DomainError):
    code = "NOT_FOUND"


class Conflict(DomainError):
    code = "CONFLICT"


class InvalidTransition(Conflict):
    code = "INVALID_TRANSITION"


class VerificationFailed(DomainError):
    code = "VERIFICATION_FAILED"


class Refused(DomainError):
    code = "REFUSED"


class ExternalError(ResimError):
    """A peer failed. ``retryable`` tells the job runner whether to back off and retry."""

    code = "EXTERNAL_ERROR"

    def __init__(self, message: str, *, retryable: bool, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retryable = retryable


class TooManyAttempts(DomainError):
    """Back-off or a hard cap (SEC-03, SEC-08). ``retry_after`` is seconds, if known."""

    code = "TOO_MANY_ATTEMPTS"

    def __init__(
        self, message: str, *, code: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"


class PermissionDenied(DomainError):
    code = "PERMISSION_DENIED"


class SinkError(ExternalError):
    """A CAMARA notification sink failed; ``status`` is its HTTP answer, if it gave one."""

    code = "SINK_ERROR"

    def __init__(
        self, message: str, *, retryable: bool, status: int | None, code: str | None = None
    ) -> None:
        super().__init__(message, retryable=retryable, code=code)
        self.status = status


class ConfigurationError(ResimError):
    """The settings cannot work with what they point at (refused at start-up)."""

    code = "CONFIGURATION_ERROR"


class Unavailable(ExternalError):
    """The database could not serve the unit of work now (it was retried); try again.

    Always retryable; ``retry_after`` is the seconds a caller should wait.
    """

    code = "TEMPORARILY_UNAVAILABLE"

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message, retryable=True)
        self.retry_after = retry_after
