"""ES2+ on the wire (GSMA SGP.22 section 5.3 and 6.5): bodies, headers, ICCID pad.

Both sides of resim use these models: the operator client (requests out,
responses in), the callback router (handleDownloadProgressInfo in) and the
SM-DP+ emulator (requests in, callbacks out). Field names are snake_case in
Python and camelCase on the wire; unknown fields are ignored so that any
SGP.22 peer can talk to us (be liberal in what you accept).

Serialise with :func:`dump`; parse with ``Model.model_validate(obj)``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from resim.services.ports import DownloadProgress

ADMIN_PROTOCOL = "gsma/rsp/v2.5.0"
ADMIN_PROTOCOL_PREFIX = "gsma/rsp/v2."
ADMIN_PROTOCOL_HEADER = "X-Admin-Protocol"
PATH_PREFIX = "/gsma/rsp2/es2plus/"

DOWNLOAD_ORDER = "downloadOrder"
CONFIRM_ORDER = "confirmOrder"
CANCEL_ORDER = "cancelOrder"
RELEASE_PROFILE = "releaseProfile"
HANDLE_DOWNLOAD_PROGRESS_INFO = "handleDownloadProgressInfo"
OPERATOR_FUNCTIONS = (DOWNLOAD_ORDER, CONFIRM_ORDER, CANCEL_ORDER, RELEASE_PROFILE)

EXECUTED_SUCCESS = "Executed-Success"
EXECUTED_WITH_WARNING = "Executed-WithWarning"
FAILED = "Failed"
EXPIRED = "Expired"
SUCCESS_STATUSES = frozenset({EXECUTED_SUCCESS, EXECUTED_WITH_WARNING})
ALL_STATUSES = frozenset({EXECUTED_SUCCESS, EXECUTED_WITH_WARNING, FAILED, EXPIRED})


def es2_headers() -> dict[str, str]:
    """HTTP headers of every ES2+ request and response."""
    return {
        "Content-Type": "application/json",
        "Accept": "application/json",
        ADMIN_PROTOCOL_HEADER: ADMIN_PROTOCOL,
    }


def admin_protocol_ok(value: str | None) -> bool:
    """Peers accept any ``gsma/rsp/v2.`` minor version; one real client rejects others."""
    return value is not None and value.strip().lower().startswith(ADMIN_PROTOCOL_PREFIX)


def pad_iccid(iccid: str) -> str:
    """ES2+ carries the ICCID as an even number of nibbles: 19 digits get a trailing F."""
    return iccid + "F" if len(iccid) == 19 else iccid


def strip_iccid_pad(raw: str) -> str:
    """Undo :func:`pad_iccid` (case-insensitive); does not validate the digits."""
    value = raw.strip()
    return value[:-1] if value[-1:] in ("F", "f") else value


class _Wire(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )


def dump(model: BaseModel) -> dict[str, Any]:
    """The camelCase JSON object of ``model`` without absent optional fields."""
    return model.model_dump(by_alias=True, exclude_none=True, mode="json")


# ---------------------------------------------------------------- headers


class RequestHeader(_Wire):
    function_requester_identifier: str = Field(min_length=1)
    function_call_identifier: str = Field(min_length=1)


class StatusCodeData(_Wire):
    subject_code: str
    reason_code: str
    subject_identifier: str | None = None
    message: str | None = None


class FunctionExecutionStatus(_Wire):
    status: str
    status_code_data: StatusCodeData | None = None


class ResponseHeader(_Wire):
    function_execution_status: FunctionExecutionStatus


def success_header() -> ResponseHeader:
    return ResponseHeader(
        function_execution_status=FunctionExecutionStatus(status=EXECUTED_SUCCESS)
    )


def failure_header(
    subject_code: str,
    reason_code: str,
    *,
    message: str | None = None,
    subject_identifier: str | None = None,
    status: str = FAILED,
) -> ResponseHeader:
    return ResponseHeader(
        function_execution_status=FunctionExecutionStatus(
            status=status,
            status_code_data=StatusCodeData(
                subject_code=subject_code,
                reason_code=reason_code,
                message=message,
                subject_identifier=subject_identifier,
            ),
        )
    )


def failure_body(subject_code: str, reason_code: str, message: str | None = None) -> dict[str, Any]:
    """A complete ES2+ error response body (HTTP 200, SGP.22 6.5.1)."""
    return {"header": dump(failure_header(subject_code, reason_code, message=message))}


def invalid_status(exc: ValidationError, prefix: str | None = None) -> StatusCodeData:
    """1.6/2.2 when a mandatory field is missing, else 1.6/2.1; names the first bad field.

    Field locations are the camelCase wire names (``header.functionCallIdentifier``).
    """
    errors = exc.errors()
    missing = [e for e in errors if e["type"] == "missing"]
    first = (missing or errors)[0]
    loc = ".".join(str(p) for p in ((prefix,) if prefix else ()) + tuple(first["loc"]))
    if missing:
        return StatusCodeData(
            subject_code="1.6", reason_code="2.2", subject_identifier=loc,
            message=f"mandatory field missing: {loc}",
        )  # fmt: skip
    return StatusCodeData(
        subject_code="1.6", reason_code="2.1", subject_identifier=loc,
        message=f"invalid field: {loc}",
    )  # fmt: skip


# ---------------------------------------------------------------- requests


class DownloadOrderRequest(_Wire):
    header: RequestHeader
    eid: str | None = None
    iccid: str | None = None
    profile_type: str | None = None


class ConfirmOrderRequest(_Wire):
    header: RequestHeader
    iccid: str
    release_flag: bool
    eid: str | None = None
    matching_id: str | None = None
    confirmation_code: str | None = None
    smds_address: str | None = None


class CancelOrderRequest(_Wire):
    header: RequestHeader
    iccid: str
    final_profile_status_indicator: Literal["Available", "Unavailable"]
    eid: str | None = None
    matching_id: str | None = None


class ReleaseProfileRequest(_Wire):
    header: RequestHeader
    iccid: str


class NotificationPointStatus(_Wire):
    status: str
    status_code_data: StatusCodeData | None = None

    @field_validator("status")
    @classmethod
    def _known_status(cls, value: str) -> str:
        if value not in ALL_STATUSES:
            raise ValueError("unknown functionExecutionStatus")
        return value


class HandleDownloadProgressInfoRequest(_Wire):
    header: RequestHeader
    iccid: str = Field(min_length=1)
    profile_type: str = Field(min_length=1)
    timestamp: dt.datetime
    notification_point_id: int
    notification_point_status: NotificationPointStatus
    eid: str | None = None
    result_data: str | None = None

    @field_validator("timestamp")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        # SGP.22 says UTC with a zone; a peer omitting the zone is read as UTC.
        return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)

    @classmethod
    def from_progress(cls, progress: DownloadProgress) -> HandleDownloadProgressInfoRequest:
        """The wire body of ``progress`` (ICCID padded, as the SM-DP+ sends it)."""
        code_data = None
        if progress.subject_code and progress.reason_code:
            code_data = StatusCodeData(
                subject_code=progress.subject_code,
                reason_code=progress.reason_code,
                message=progress.message,
            )
        return cls(
            header=RequestHeader(
                function_requester_identifier=progress.smdp_id,
                function_call_identifier=progress.call_id,
            ),
            eid=progress.eid,
            iccid=pad_iccid(progress.iccid),
            profile_type=progress.profile_type,
            timestamp=progress.timestamp,
            notification_point_id=progress.notification_point_id,
            notification_point_status=NotificationPointStatus(
                status=progress.status, status_code_data=code_data
            ),
        )

    def to_progress(self, *, iccid: str, eid: str | None) -> DownloadProgress:
        """The port's dataclass; ``iccid`` (unpadded) and ``eid`` are the validated values."""
        code_data = self.notification_point_status.status_code_data
        return DownloadProgress(
            smdp_id=self.header.function_requester_identifier,
            call_id=self.header.function_call_identifier,
            iccid=iccid,
            profile_type=self.profile_type,
            timestamp=self.timestamp,
            notification_point_id=self.notification_point_id,
            status=self.notification_point_status.status,
            eid=eid,
            subject_code=code_data.subject_code if code_data else None,
            reason_code=code_data.reason_code if code_data else None,
            message=code_data.message if code_data else None,
        )


# ---------------------------------------------------------------- responses


class Es2Response(_Wire):
    """Any ES2+ response; function-specific fields are read by the subclasses."""

    header: ResponseHeader


class DownloadOrderResponse(Es2Response):
    iccid: str | None = None


class ConfirmOrderResponse(Es2Response):
    matching_id: str | None = None
    eid: str | None = None
    smdp_address: str | None = None
