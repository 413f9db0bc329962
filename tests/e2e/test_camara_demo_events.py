"""The demo's CAMARA subscription: the welcome's subscription, then the demo
walkthrough's replacement reaches cut-over, and the demo bank's loopback sink
receives the swapped event (shown at /demo/events, token masked)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from resim.domain.camara_events import SWAPPED
from resim.entrypoints.demo import (
    DEMO_SINK_TOKEN,
    DemoStack,
    demo_subscription,
    print_welcome,
    start_demo,
)
from resim.entrypoints.walkthrough import walkthrough
from resim.settings import Settings

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[DemoStack]:
    settings = Settings(
        data_dir=tmp_path, secret_keys="gCuHV2bJ3lqkC9b6V5Rj0bSLKc0tqtZ5V6xnCQ8Y1dA="
    )  # type: ignore[arg-type]
    started = start_demo(
        settings,
        api_port=0,
        smdp_port=0,
        smtp_port=0,
        sms_port=0,
        lines_per_brand=4,
        say=lambda _line: None,
    )
    yield started
    started.stop()


def test_the_demo_bank_hears_of_the_walkthrough_swap(stack: DemoStack) -> None:
    assert stack.sink is not None
    welcome: list[str] = []
    print_welcome(stack, say=welcome.append)
    assert any("/sim-swap-subscriptions/v0.3/subscriptions" in line for line in welcome)
    msisdn = stack.data.lines[0].msisdn  # the walkthrough's line
    created = httpx.post(
        f"{stack.api.url}/sim-swap-subscriptions/v0.3/subscriptions",
        json=demo_subscription(stack.sink.url, msisdn),
        headers={"Authorization": f"Bearer {stack.subscriptions_token}"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    walkthrough(stack, say=lambda _line: None)
    (event,) = stack.sink.wait_for(1, timeout=30)
    assert event.body is not None and event.body["type"] == SWAPPED
    assert event.body["data"] == {"subscriptionId": created.json()["id"], "phoneNumber": msisdn}
    page = httpx.get(f"{stack.api.url}/demo/events", timeout=10).text
    assert event.body["id"] in page
    assert DEMO_SINK_TOKEN not in page
