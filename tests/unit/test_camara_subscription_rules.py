"""Pure rules of CAMARA subscriptions, and the sink adapter against httpx.MockTransport."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
from pydantic import ValidationError

from resim.adapters.events.fake import FakeEventSink
from resim.adapters.events.http import HttpEventSink
from resim.domain.camara_events import SWAPPED, sink_is_url, sink_problem, swapped_event
from resim.domain.camara_subscription_request import parse_subscription_request
from resim.errors import InvalidInput, SinkError
from resim.services.ports import EventSink, OutgoingEvent
from resim.settings import Settings

NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


class TestSinks:
    @pytest.mark.parametrize(
        ("sink", "loopback_ok", "ok"),
        [
            ("https://rp.example.com/hook?x=1", False, True),
            ("http://rp.example.com/hook", True, False),
            ("http://127.0.0.1:9000/sink", False, False),
            ("http://127.0.0.1:9000/sink", True, True),
            ("http://[::1]:9000/sink", True, True),
            ("http://localhost/sink", True, True),
            ("http://10.0.0.1/sink", True, False),
            ("https://user:pw@rp.example.com/", False, False),
            ("https://rp.example.com/#frag", False, False),
            ("ftp://rp.example.com/", True, False),
            ("https://", False, False),
            ("https://rp.example.com:99999/", False, False),
        ],
    )
    def test_which_sinks_are_accepted(self, sink: str, loopback_ok: bool, ok: bool) -> None:
        assert (sink_problem(sink, allow_http_loopback=loopback_ok) is None) is ok

    def test_production_refuses_plain_http_sinks(self) -> None:
        with pytest.raises(ValidationError):
            Settings(environment="production", camara_sink_allow_http_loopback=True)


def body(**credential: object) -> dict[str, object]:
    return {
        "protocol": "HTTP",
        "sink": "https://rp.example.com/sink",
        "types": [SWAPPED],
        "config": {"subscriptionDetail": {"phoneNumber": "+4530100001"}},
        "sinkCredential": {
            "credentialType": "ACCESSTOKEN",
            "accessToken": "t0ken",
            "accessTokenExpiresUtc": "2026-03-02T00:00:00+01:00",
            "accessTokenType": "bearer",
            **credential,
        },
    }


class TestParsing:
    def test_a_valid_body(self) -> None:
        spec = parse_subscription_request(body(), now=NOW, allow_http_loopback=False)
        assert spec.phone_number == "+4530100001"
        assert spec.token_expires_at == dt.datetime(2026, 3, 1, 23, 0, tzinfo=dt.UTC)
        assert "t0ken" not in repr(spec)

    def test_epoch_seconds_as_in_the_spec_example(self) -> None:
        spec = parse_subscription_request(
            body(accessTokenExpiresUtc="1900000000"), now=NOW, allow_http_loopback=False
        )
        assert spec.token_expires_at == dt.datetime.fromtimestamp(1900000000, dt.UTC)

    @pytest.mark.parametrize(
        ("change", "code"),
        [
            ({"accessTokenExpiresUtc": "2026-03-02T00:00:00"}, "INVALID_ARGUMENT"),  # no zone
            ({"accessTokenExpiresUtc": "2026-03-02"}, "INVALID_ARGUMENT"),  # no time
            ({"accessToken": "a\r\nX-Evil: 1"}, "INVALID_ARGUMENT"),  # header injection
            ({"accessToken": ""}, "INVALID_ARGUMENT"),
            ({"accessTokenType": "mac"}, "INVALID_TOKEN"),
            ({"credentialType": "PLAIN"}, "INVALID_CREDENTIAL"),
            ({"credentialType": "OTHER"}, "INVALID_ARGUMENT"),
        ],
    )
    def test_credential_refusals(self, change: dict[str, object], code: str) -> None:
        with pytest.raises(InvalidInput) as err:
            parse_subscription_request(body(**change), now=NOW, allow_http_loopback=False)
        assert err.value.code == code
        assert "t0ken" not in err.value.message

    @pytest.mark.parametrize("field", ["types", "credentialType"])
    def test_an_object_where_a_name_belongs_is_invalid_not_a_crash(self, field: str) -> None:
        data = body()
        if field == "types":
            data["types"] = [{"a": 1}]
        else:
            data["sinkCredential"] = {"credentialType": {"a": 1}}
        with pytest.raises(InvalidInput) as err:
            parse_subscription_request(data, now=NOW, allow_http_loopback=False)
        assert err.value.code == "INVALID_ARGUMENT"

    def test_max_events_must_be_an_integer(self) -> None:
        data = body()
        data["config"] = {"subscriptionDetail": {}, "subscriptionMaxEvents": True}
        with pytest.raises(InvalidInput, match="integer"):
            parse_subscription_request(data, now=NOW, allow_http_loopback=False)


def _event() -> OutgoingEvent:
    payload = swapped_event(
        event_id="e1",
        source="https://resim.test/sim-swap-subscriptions/v0.3",
        subscription_id="s1",
        phone_number="+4530100001",
        swapped_at=NOW,
    )
    return OutgoingEvent(
        id="e1", sink="https://rp.example.com/sink", body=payload, access_token="t0ken"
    )


class TestHttpEventSink:
    def test_posts_a_structured_cloud_event_with_the_bearer_token(self) -> None:
        seen: list[httpx.Request] = []

        def answer(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(204)

        sink: EventSink = HttpEventSink(transport=httpx.MockTransport(answer))
        assert sink.deliver(_event()) == 204
        (request,) = seen
        assert request.headers["content-type"] == "application/cloudevents+json"
        assert request.headers["authorization"] == "Bearer t0ken"
        assert request.headers["x-correlator"] == "e1"
        assert json.loads(request.content)["time"] == "2026-03-01T09:00:00.000Z"
        assert "t0ken" not in repr(_event())

    @pytest.mark.parametrize(
        ("status", "retryable", "code"),
        [
            (500, True, "SINK_UNAVAILABLE"),
            (503, True, "SINK_UNAVAILABLE"),
            (408, True, "SINK_UNAVAILABLE"),
            (429, True, "SINK_UNAVAILABLE"),
            (400, False, "SINK_REJECTED"),
            (401, False, "SINK_REJECTED"),
            (302, False, "SINK_REJECTED"),  # a redirect is not followed
            (410, False, "SINK_GONE"),
        ],
    )
    def test_statuses_are_classified(self, status: int, retryable: bool, code: str) -> None:
        sink = HttpEventSink(
            transport=httpx.MockTransport(
                lambda _r: httpx.Response(status, headers={"Location": "https://evil.test/"})
            )
        )
        with pytest.raises(SinkError) as err:
            sink.deliver(_event())
        assert (err.value.retryable, err.value.code, err.value.status) == (retryable, code, status)
        assert "t0ken" not in err.value.message and "/sink" not in err.value.message

    def test_transport_errors_are_retryable(self) -> None:
        def refuse(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("refused", request=request)

        with pytest.raises(SinkError) as err:
            HttpEventSink(transport=httpx.MockTransport(refuse)).deliver(_event())
        assert err.value.retryable and err.value.status is None

    def test_the_fake_classifies_like_the_real_one(self) -> None:
        fake = FakeEventSink()
        fake.answer_next(503, 410, None)
        outcomes = []
        for _ in range(4):
            try:
                outcomes.append(fake.deliver(_event()))
            except SinkError as exc:
                outcomes.append((exc.code, exc.retryable))
        assert outcomes == [
            ("SINK_UNAVAILABLE", True),
            ("SINK_GONE", False),
            ("SINK_UNAVAILABLE", True),
            204,
        ]


class TestWhatIsAUrl:
    """Issue 15 item 1: "not a URL at all" (schema, INVALID_ARGUMENT) apart from
    "a URL unfit for the protocol" (INVALID_SINK)."""

    @pytest.mark.parametrize(
        "sink",
        ["not-an-url", "", "https://", "https:///path", "//rp.example.com/x",
         "https://rp.example.com:99999/x", "https://rp.example.com/a b", "1https://x.example",
         "https://rp.example.com/\x00"],
    )  # fmt: skip
    def test_not_urls(self, sink: str) -> None:
        assert not sink_is_url(sink)

    @pytest.mark.parametrize(
        "sink",
        ["https://rp.example.com/sink", "http://rp.example.com/sink", "ftp://rp.example.com/x",
         "mailto:events@rp.example.com", "https://user:pw@rp.example.com/"],
    )  # fmt: skip
    def test_urls_even_unfit_ones(self, sink: str) -> None:
        assert sink_is_url(sink)


class TestExpireTimeCodes:
    def test_a_past_expire_time_is_invalid_argument(self) -> None:
        now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        body = {
            "protocol": "HTTP",
            "sink": "https://rp.example.com/sink",
            "types": [SWAPPED],
            "config": {
                "subscriptionDetail": {"phoneNumber": "+4530100001"},
                "subscriptionExpireTime": "2025-12-31T23:59:59Z",
            },
        }
        with pytest.raises(InvalidInput) as err:
            parse_subscription_request(body, now=now, allow_http_loopback=False)
        assert err.value.code == "INVALID_ARGUMENT"
