"""Structured logging (structlog) for every process; secrets never reach a log (SEC-11).

Secrets are not passed to loggers in the first place. As a second line of
defence every event goes through :func:`redact_secrets`:

* the value of any key whose name says "secret" (``otp``, ``code``, ``pin``,
  ``password``, ``totp``, ``token``, ``authorization``, ``secret``,
  ``activation_code``, ``matching_id``, ``ki``, ``opc``, ``key`` ... see
  :func:`is_sensitive_key`) becomes ``"[redacted]"``, at any depth;
* in every string, known secret shapes are masked (:func:`scrub`): Fernet
  tokens, ``rsk_`` API keys, bearer credentials, LPA activation codes
  (``LPA:1$...`` and bare ``1$host$matchingId``), bare MatchingIDs in the
  SGP.22 alphabet (``K2D7Q-8WZ3M-P4HXA-N6TRB``: a database error may quote
  one without its address), e-mail addresses, "not me" link tokens and query
  strings (a URL's query may carry a token);
* values a service was told to keep out of logs (customer names, a MatchingID
  in a peer's own format) inside the current
  :func:`resim.services.audit.redaction.scope`, e.g. while a job sends a message.

SQLAlchemy engines are built with ``hide_parameters`` (adapters/db/engine.py),
so a failed statement's error names no bound value; what a database server
quotes in its own message (PostgreSQL's "Failing row contains (...)") still
passes through the shapes above.

Records of the standard library's loggers (uvicorn, httpx, SQLAlchemy, and
anything else) are scrubbed too, message and traceback, when they are created
(a log-record factory), so no handler, however configured, sees the clear text. uvicorn's access log
loses query strings altogether. Each argument is scrubbed in place, so a
formatter that reads the arguments (uvicorn's access formatter) still works;
:func:`configure_logging` renders those records like resim's own events, one
line each.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from resim.services.audit import redaction

REDACTED = "[redacted]"

_SENSITIVE_EXACT = frozenset(
    {
        "otp",
        "code",
        "otp_code",
        "pin",
        "password",
        "passwd",
        "passphrase",
        "totp",
        "token",
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "secret",
        "activation_code",
        "activationcode",
        "matching_id",
        "matchingid",
        "confirmation_code",
        "confirmationcode",
        "ki",
        "k",
        "opc",
        "key",
        "api_key",
        "apikey",
        "x-api-key",
        "qr_payload",
        "secret_context",
    }
)
_SENSITIVE_PARTS = ("password", "secret", "token", "passwd", "api_key", "apikey", "private")


def is_sensitive_key(name: str) -> bool:
    """Whether a field called ``name`` holds a secret (case-insensitive)."""
    key = name.lower()
    if key in _SENSITIVE_EXACT:
        return True
    if key.endswith(("_key", "_pin", "_otp", "_totp")):
        return True
    return any(part in key for part in _SENSITIVE_PARTS)


_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    # Fernet tokens: version byte 0x80 and a timestamp -> "gAAAAA" in url-safe base64.
    (re.compile(r"gAAAAA[A-Za-z0-9_\-]{20,}={0,2}"), REDACTED),
    # resim API keys.
    (re.compile(r"rsk_[A-Za-z0-9_\-]{8,}"), "rsk_" + REDACTED),
    # HTTP credentials.
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/\-]+=*"), r"\1 " + REDACTED),
    # Activation codes (SGP.22 4.1): LPA:1$<SM-DP+ address>$<matching id>[...].
    (re.compile(r"LPA:1\$[^\s\"'<>]+"), "LPA:1$" + REDACTED),
    (re.compile(r"(?<![\w$])1\$[A-Za-z0-9.\-]+\$[^\s\"'<>$]+(\$[^\s\"'<>]*)?"), "1$" + REDACTED),
    # A bare MatchingID (SGP.22 4.1 alphabet 0-9 A-Z and '-'): hyphenated groups,
    # at least ten characters, two letters and a digit. ISO dates ("2026-03-01T09:")
    # have one letter; error codes use '_'; resim's ids are lower-case hex.
    (
        re.compile(
            r"(?<![\w-])(?=[0-9A-Z-]{10})(?=[0-9A-Z-]*[0-9])(?=(?:[0-9-]*[A-Z]){2})"
            r"[0-9A-Z]+(?:-[0-9A-Z]+)+(?![\w:-])"
        ),
        REDACTED,
    ),
    # E-mail addresses (personal data): local part, @, a domain with a dot.
    (
        re.compile(r"(?<![\w.+%-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"),
        "[email]",
    ),
    # The "this was not me" link carries a bearer token in its path.
    (re.compile(r"(/not-me/)[A-Za-z0-9_\-]+"), r"\1" + REDACTED),
    # Query strings of URLs and request lines.
    (re.compile(r"(/[^\s?\"']*)\?[^\s\"']+"), r"\1?" + REDACTED),
)


_ERROR_CODE = re.compile(r"[A-Z][A-Z0-9_.\-]*")


def scrub(text: str) -> str:
    """``text`` with every known secret shape, and every told value, masked."""
    for pattern, replacement in _SHAPES:
        text = pattern.sub(replacement, text)
    return redaction.mask_told(text)


def _redact(value: Any, depth: int = 0) -> Any:
    if depth > 8:
        return value
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if isinstance(k, str) and is_sensitive_key(k) else _redact(v, depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_redact(v, depth + 1) for v in value)
    return value


def redact_secrets(
    _logger: Any, _method: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    """structlog processor: mask sensitive keys and secret shapes (see the module docstring)."""
    for key in list(event_dict):
        value = event_dict[key]
        if key == "code" and isinstance(value, str) and _ERROR_CODE.fullmatch(value):
            continue  # an error code (SMDP_UNAVAILABLE), not a one-time code
        if key != "event" and is_sensitive_key(key):
            event_dict[key] = REDACTED
        elif isinstance(value, str | Mapping | list | tuple):
            event_dict[key] = _redact(value)
    return event_dict


_base_factory: Callable[..., logging.LogRecord] | None = None


def _scrubbing_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    assert _base_factory is not None
    record = _base_factory(*args, **kwargs)
    try:
        if isinstance(record.args, tuple) and record.args:
            # Scrub each argument and keep the tuple: a formatter may read the
            # arguments themselves (uvicorn's access formatter unpacks five).
            access = record.name == "uvicorn.access"
            record.args = tuple(
                _scrub_argument(a, query=not (access and i == 2)) for i, a in enumerate(record.args)
            )
        message = record.getMessage()
    except Exception:  # a malformed record: leave it to logging's own error path
        return record
    clean = scrub(message)
    if clean != message and record.name != "uvicorn.access":
        # Still a secret once assembled (it spans the format and an argument):
        # the record keeps only the scrubbed text. Access records never get
        # here with a secret: their arguments are scrubbed one by one above.
        record.msg, record.args = clean, ()
    if record.exc_info and not record.exc_text:
        # Formatters print exc_text when it is set: the traceback's text (a
        # database error quoting a row, say) is scrubbed like the message.
        record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
    return record


def _scrub_argument(value: Any, *, query: bool = True) -> Any:
    """A log argument without secrets; ``query=False``: a request path, whose
    query string is dropped altogether (it may carry a token)."""
    if not isinstance(value, str):
        return value
    return scrub(value if query else value.split("?", 1)[0])


def install_stdlib_scrubbing() -> None:
    """Scrub every stdlib log record when it is created (idempotent)."""
    global _base_factory
    if _base_factory is None:
        _base_factory = logging.getLogRecordFactory()
        logging.setLogRecordFactory(_scrubbing_factory)


def configure_logging(*, fmt: str = "console", level: str = "INFO") -> None:
    """structlog and the standard library's loggers both write one line per event
    to stderr, in the same format (``console`` or ``json``), secrets scrubbed.

    Servers must be started with ``log_config=None`` (uvicorn) so that their
    records reach these handlers instead of uvicorn's own formatters.
    """
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    handler = logging.StreamHandler(_CurrentStderr())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                _stdlib_context,
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                redact_secrets,
                renderer,
            ],
        )
    )
    logging.basicConfig(level=level.upper(), handlers=[handler])
    install_stdlib_scrubbing()
    # A uvicorn started earlier in this process with its own log config (a test's
    # emulator, an embedding app) left handlers on its loggers that stop records
    # from reaching ours: hand them back to the root logger.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        server_log = logging.getLogger(name)
        server_log.handlers = []
        server_log.propagate = True
        server_log.disabled = False
        server_log.setLevel(logging.NOTSET)
    # Chatty libraries: request lines and SMTP dialogue (which names recipients)
    # are not resim's events; keep them to warnings.
    for name in ("httpx", "httpcore", "mail.log", "aiosmtpd", "uvicorn.access"):
        logging.getLogger(name).setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=_StderrLogger,
        cache_logger_on_first_use=True,
    )


def _stdlib_context(
    _logger: Any, _method: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    """A standard library record's logger name, and its traceback as the
    scrubbed text the record factory made (never formatted again from the
    live exception, which would bring the clear text back)."""
    record = event_dict.get("_record")
    exc_info = event_dict.pop("exc_info", None)
    if isinstance(record, logging.LogRecord):
        event_dict["logger"] = record.name
        if exc_info:
            event_dict["exception"] = record.exc_text or scrub(
                logging.Formatter().formatException(record.exc_info or exc_info)
            )
    return event_dict


class _CurrentStderr:
    """A stream that writes to whatever ``sys.stderr`` is at that moment (see _StderrLogger)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _StderrLogger:
    """Writes each rendered event to whatever ``sys.stderr`` is at that moment.

    structlog's PrintLogger keeps the stream it was created with; a process whose
    stderr is swapped (a test runner, a daemon closing its terminal) would then
    write to a closed file.
    """

    def __init__(self, *_args: object) -> None:
        pass

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log = debug = info = warn = warning = error = err = critical = exception = fatal = msg
