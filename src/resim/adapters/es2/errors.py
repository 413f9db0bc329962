"""ES2+ errors: what the SM-DP+ said, classified for the job runner.

    ExternalError (resim.errors)
    ├── Es2StatusError        the SM-DP+ answered with functionExecutionStatus
    │                         Failed or Expired; carries subject and reason codes
    │   ├── retryable=True    subject 1.2 with reason 4.x (busy, execution error)
    │   └── retryable=False   everything else (unknown ICCID, wrong state, ...)
    └── ExternalError(code="SMDP_UNAVAILABLE", retryable=True)
                              transport error, timeout, HTTP 5xx, 408/429,
                              a response that cannot be parsed
    └── ExternalError(code="SMDP_PROTOCOL_MISMATCH", retryable=False)
                              a 2xx response without an X-Admin-Protocol
                              starting "gsma/rsp/v2."
    └── ExternalError(code="SMDP_HTTP_ERROR", retryable=False)
                              any other 4xx (wrong URL, TLS client refused)
    └── ExternalError(code="SMDP_PROTOCOL_ERROR", retryable=False)
                              Failed without statusCodeData: SGP.22 6.5.1.2
                              makes it mandatory when the status is Failed; a
                              peer that omits it will omit it again on a retry

Messages never carry the confirmation code or the matching ID: the client
redacts them from the peer's free-text message before it builds the error.
"""

from __future__ import annotations

from dataclasses import dataclass

from resim.errors import ExternalError


@dataclass(frozen=True)
class StatusCodeInfo:
    """One row of the ES2+ status table (reference/es2plus.md)."""

    code: str
    meaning: str


# (subjectCode, reasonCode) -> stable resim code. SGP.22 section 5.3 lists the
# codes per function; the same pair means the same thing across functions.
STATUS_CODES: dict[tuple[str, str], StatusCodeInfo] = {
    ("1.1", "1.1"): StatusCodeInfo("ES2_REQUESTER_UNKNOWN", "function requester unknown"),
    ("1.1", "1.2"): StatusCodeInfo("ES2_REQUESTER_NOT_ALLOWED", "function requester not allowed"),
    ("1.2", "4.2"): StatusCodeInfo("ES2_EXECUTION_ERROR", "SM-DP+ execution error"),
    ("1.2", "4.4"): StatusCodeInfo("ES2_BUSY", "SM-DP+ busy"),
    ("1.6", "2.1"): StatusCodeInfo("ES2_INVALID_PARAMETER", "a parameter is invalid"),
    ("1.6", "2.2"): StatusCodeInfo("ES2_MANDATORY_MISSING", "a mandatory parameter is missing"),
    ("8.1.1", "3.10"): StatusCodeInfo("ES2_EID_MISMATCH", "a different EID is linked"),
    ("8.2.1", "3.10"): StatusCodeInfo("ES2_EID_MISMATCH", "a different EID is linked"),
    ("8.2.1", "3.3"): StatusCodeInfo("ES2_PROFILE_NOT_AVAILABLE", "ICCID not available"),
    ("8.2.1", "3.5"): StatusCodeInfo("ES2_WRONG_STATE", "profile cannot change state that way"),
    ("8.2.1", "3.9"): StatusCodeInfo("ES2_ICCID_UNKNOWN", "ICCID unknown"),
    ("8.2.5", "3.7"): StatusCodeInfo("ES2_PROFILE_TYPE_EXHAUSTED", "no profile of that type left"),
    ("8.2.5", "3.9"): StatusCodeInfo("ES2_PROFILE_TYPE_UNKNOWN", "profile type unknown"),
    ("8.2.6", "3.3"): StatusCodeInfo("ES2_MATCHING_ID_USED", "matching ID already used"),
    ("8.2.6", "3.8"): StatusCodeInfo("ES2_MATCHING_ID_REFUSED", "matching ID does not match"),
    ("8.9", "5.1"): StatusCodeInfo("ES2_SMDS_UNREACHABLE", "SM-DS unreachable"),
}

SMDP_UNAVAILABLE = "SMDP_UNAVAILABLE"
SMDP_PROTOCOL_MISMATCH = "SMDP_PROTOCOL_MISMATCH"
SMDP_HTTP_ERROR = "SMDP_HTTP_ERROR"
SMDP_PROTOCOL_ERROR = "SMDP_PROTOCOL_ERROR"


def is_retryable_status(subject_code: str, reason_code: str) -> bool:
    """1.2 / 4.x (busy, execution error) is transient; every other pair is final."""
    return subject_code == "1.2" and reason_code.startswith("4.")


def code_for(status: str, subject_code: str, reason_code: str) -> str:
    """The stable resim code of a status pair; unknown pairs fall back by status."""
    info = STATUS_CODES.get((subject_code, reason_code))
    if info is not None:
        return info.code
    return "ES2_EXPIRED" if status == "Expired" else "ES2_FAILED"


class Es2StatusError(ExternalError):
    """The SM-DP+ executed the call and answered Failed or Expired.

    ``status`` is "Failed" or "Expired"; ``subject_code`` and ``reason_code``
    are the SGP.22 pair; ``peer_message`` is the SM-DP+'s free text with any
    secret the client sent already redacted. ``retryable`` follows
    :func:`is_retryable_status` for both statuses.
    """

    def __init__(
        self,
        *,
        function: str,
        status: str,
        subject_code: str,
        reason_code: str,
        peer_message: str | None = None,
        subject_identifier: str | None = None,
    ) -> None:
        info = STATUS_CODES.get((subject_code, reason_code))
        meaning = info.meaning if info else "unlisted status code"
        text = f"SM-DP+ answered {status} to {function}: {meaning} ({subject_code}/{reason_code})"
        if peer_message:
            text += f": {peer_message[:200]}"
        super().__init__(
            text,
            retryable=is_retryable_status(subject_code, reason_code),
            code=code_for(status, subject_code, reason_code),
        )
        self.function = function
        self.status = status
        self.subject_code = subject_code
        self.reason_code = reason_code
        self.peer_message = peer_message
        self.subject_identifier = subject_identifier


def smdp_unavailable(function: str, why: str) -> ExternalError:
    """A retryable transport-level failure. ``why`` must not contain secrets."""
    return ExternalError(
        f"SM-DP+ unavailable for {function}: {why}", retryable=True, code=SMDP_UNAVAILABLE
    )


def redact(text: str | None, secrets: list[str | None]) -> str | None:
    """Replace every non-empty secret occurring in ``text`` by ``***``."""
    if text is None:
        return None
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
