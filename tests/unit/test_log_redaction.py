"""SEC-11: what reaches a log is scrubbed of secrets, for structlog and the stdlib alike."""

from __future__ import annotations

import json
import logging
import threading

import pytest
import structlog

from resim.adapters.crypto import SecretBox
from resim.entrypoints import logs
from resim.entrypoints.logs import REDACTED, configure_logging, redact_secrets, scrub
from resim.services.audit import redaction

FERNET = SecretBox([SecretBox.generate_key()]).encrypt("4711")


class TestSensitiveKeys:
    @pytest.mark.parametrize(
        "key",
        ["otp", "code", "pin", "password", "new_password", "totp", "token", "Authorization",
         "secret", "client_secret", "activation_code", "matching_id", "ki", "opc", "key",
         "api_key", "session_token", "secret_context"],
    )  # fmt: skip
    def test_the_value_is_redacted_at_any_depth(self, key: str) -> None:
        out = redact_secrets(None, "info", {"event": "x", key: "s3cr3t", "nested": {key: "s3"}})
        assert out[key] == REDACTED and out["nested"][key] == REDACTED

    def test_ordinary_fields_and_error_codes_are_kept(self) -> None:
        event = {"event": "job.dead", "job_id": "j1", "code": "SMDP_UNAVAILABLE", "attempts": 3}
        assert redact_secrets(None, "error", dict(event)) == event
        assert redact_secrets(None, "info", {"event": "x", "code": "123456"})["code"] == REDACTED


class TestSecretShapes:
    @pytest.mark.parametrize(
        ("text", "secret"),
        [
            (f"decrypting {FERNET} failed", FERNET),
            ("client rsk_AbCdEf0123456789xyz called", "rsk_AbCdEf0123456789xyz"),
            ("Authorization: Bearer eyJhbGciOi.payload.sig", "eyJhbGciOi.payload.sig"),
            ("code LPA:1$smdp.resim.test$K2-3F4-5G6H", "K2-3F4-5G6H"),
            ("activation 1$smdp.resim.test$K2-3F4-5G6H issued", "K2-3F4-5G6H"),
            ("GET http://h/not-me/Zx_9-abcDEF0123456789 200", "Zx_9-abcDEF0123456789"),
            ('"GET /v1/requests?token=abc123def HTTP/1.1" 200', "abc123def"),
            # Issue 13, finding 11: bare MatchingIDs (resim's and SGP.22's own example)
            # and e-mail addresses, as a database error message quotes them.
            ("Failing row contains (K2D7Q-8WZ3M-P4HXA-N6TRB, null)", "K2D7Q-8WZ3M-P4HXA-N6TRB"),
            ("matching 04386-AGYFT-A74Y8-3F815 refused", "04386-AGYFT-A74Y8-3F815"),
            ("id K2-3F4-5G6H.", "K2-3F4-5G6H"),
            ("550 <kunde.1+x@example.dk>: mailbox unavailable", "kunde.1+x@example.dk"),
            ("Key (email)=(Karen@Blixen.example.com) exists", "Karen@Blixen.example.com"),
        ],
        # fixed ids: the Fernet token differs per process, and xdist workers
        # must collect the same test names
        ids=[
            "fernet",
            "api-key",
            "bearer",
            "lpa",
            "activation",
            "not-me-path",
            "token-query",
            "matching-id-row",
            "matching-id-sgp22",
            "matching-id-short",
            "email-smtp",
            "email-key",
        ],
    )
    def test_is_masked(self, text: str, secret: str) -> None:
        assert secret not in scrub(text)

    @pytest.mark.parametrize(
        "text",
        [
            "request 4f2a opened for +4520123401 at 2026-03-01T09:00:00Z",
            "job 6f1c0e2a9b8d4c7e8f90a1b2c3d4e5f6 dead: SMDP_UNAVAILABLE (8.2.1/3.9)",
            "date 2026-03-01, ref 4F2A9C1B, X-Resim-Kind esim_ready, SHA-256, ES2+",
            "<0a1b2c3d4e5f@resim> sent to the SM-DP+ at smdp.resim.test",
        ],
    )
    def test_plain_text_is_untouched(self, text: str) -> None:
        assert scrub(text) == text


class TestValuesAServiceWasToldAbout:
    def test_a_told_name_is_masked_inside_its_scope_only(self) -> None:
        line = "mail to Karen Blixen (Karen) failed; Bo and Both"
        with redaction.scope("Karen Blixen"):
            redaction.tell("Bo", None, "")
            masked = scrub(line)
        assert "Karen Blixen" not in masked and "(Karen)" in masked  # whole value only
        assert " Bo " not in masked and "Both" in masked  # a word, not letters of one
        assert scrub(line) == line  # the scope ended
        redaction.tell("Karen Blixen")  # outside a scope: nothing to tell
        assert scrub(line) == line

    def test_scopes_do_not_leak_between_threads(self) -> None:
        seen: list[str] = []
        with redaction.scope("Karen Blixen"):
            thread = threading.Thread(target=lambda: seen.append(scrub("Karen Blixen")))
            thread.start()
            thread.join()
        assert seen == ["Karen Blixen"]

    def test_structlog_events_mask_told_values(self, capsys: pytest.CaptureFixture[str]) -> None:
        configure_logging(fmt="json", level="DEBUG")
        try:
            with redaction.scope("Kunde 7"):
                structlog.get_logger().warning("job.retry", error="smtp refused Kunde 7")
            line = capsys.readouterr().err.strip().splitlines()[-1]
        finally:
            structlog.reset_defaults()
        assert "Kunde 7" not in line and json.loads(line)["event"] == "job.retry"


class TestStdlibRecords:
    def test_records_are_scrubbed_when_created(self) -> None:
        logs.install_stdlib_scrubbing()
        seen: list[str] = []

        class Keep(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                seen.append(self.format(record))

        handler = Keep()
        for name in ("httpx", "uvicorn.access"):
            logger = logging.getLogger(name)
            old_level, old_disabled = logger.level, logger.disabled
            logger.setLevel(logging.DEBUG)  # setLevel, not .level: it clears the level cache
            logger.disabled = False
            logger.addHandler(handler)
            try:
                if name == "httpx":
                    logger.info('HTTP Request: %s %s "%s"', "GET", f"http://h/x?k={FERNET}", 200)
                else:
                    logger.info(
                        '%s - "%s %s HTTP/%s" %d',
                        "127.0.0.1:5",
                        "GET",
                        "/not-me/tok3nvalue0123456789?otp=918273",
                        "1.1",
                        200,
                    )
            finally:
                logger.removeHandler(handler)
                logger.setLevel(old_level)
                logger.disabled = old_disabled
        joined = "\n".join(seen)
        assert len(seen) == 2
        assert FERNET not in joined
        assert FERNET not in joined and "tok3nvalue0123456789" not in joined
        assert "918273" not in joined and "/not-me/" in joined


class TestStdlibTracebacks:
    def test_the_exception_text_of_a_record_is_scrubbed_too(self) -> None:
        logs.install_stdlib_scrubbing()
        seen: list[str] = []

        class Keep(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                seen.append(logging.Formatter("%(message)s").format(record))

        logger = logging.getLogger("resim.test.tracebacks")
        logger.addHandler(handler := Keep())
        logger.propagate = False
        try:
            raise RuntimeError("Failing row contains (K2D7Q-8WZ3M-P4HXA-N6TRB, k@example.dk)")
        except RuntimeError:
            logger.error("statement failed", exc_info=True)
        finally:
            logger.removeHandler(handler)
        (text,) = seen
        assert "statement failed" in text and "Traceback" in text and "RuntimeError" in text
        assert "K2D7Q-8WZ3M-P4HXA-N6TRB" not in text and "k@example.dk" not in text


def test_configured_logging_writes_no_secret(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(fmt="json", level="DEBUG")
    try:
        log = structlog.get_logger()
        log.info(
            "verify.attempt",
            otp="918273",
            pin="2468",
            request={"activation_code": "LPA:1$h$MID-1", "state": "ready"},
            note=f"stored {FERNET}",
        )
        line = capsys.readouterr().err.strip().splitlines()[-1]
    finally:
        structlog.reset_defaults()
    event = json.loads(line)
    assert event["event"] == "verify.attempt" and event["request"]["state"] == "ready"
    for secret in ("918273", "2468", "MID-1", FERNET):
        assert secret not in line


class TestAccessRecordsKeepTheirArguments:
    """Issue 15, item 7: the scrubber emptied uvicorn's access-record arguments, and
    uvicorn's AccessFormatter (which unpacks five) printed "--- Logging error ---"."""

    def test_uvicorns_own_access_formatter_still_formats_a_scrubbed_record(self) -> None:
        from uvicorn.logging import AccessFormatter

        logs.install_stdlib_scrubbing()
        record = logging.getLogger("uvicorn.access").makeRecord(
            "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
            ("127.0.0.1:5", "GET", "/not-me/tok3nvalue0123456789?otp=918273", "1.1", 200),
            None,
        )  # fmt: skip
        text = AccessFormatter("%(client_addr)s %(request_line)s %(status_code)s").format(record)
        assert text == "127.0.0.1:5 GET /not-me/[redacted] HTTP/1.1 200 OK"

    def test_configured_logging_renders_stdlib_records_as_one_json_line(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        root = logging.getLogger()
        saved = root.handlers[:]
        root.handlers = []  # basicConfig only configures a root logger without handlers
        try:
            configure_logging(fmt="json", level="INFO")
            logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)
            try:
                raise RuntimeError(f"row holds {FERNET}")
            except RuntimeError:
                logging.getLogger("uvicorn.error").exception("boom")
            err = capsys.readouterr().err
        finally:
            for handler in root.handlers:
                root.removeHandler(handler)
            root.handlers = saved
            structlog.reset_defaults()
        lines = err.strip().splitlines()
        assert len(lines) == 2, err
        started, boom = (json.loads(line) for line in lines)
        assert started["event"] == "Started server process [42]"
        assert (started["logger"], started["level"]) == ("uvicorn.error", "info")
        assert "RuntimeError" in boom["exception"] and FERNET not in err
