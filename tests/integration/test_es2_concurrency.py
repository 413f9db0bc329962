"""Many worker threads sharing one HttpEs2Client against the emulator over loopback."""

from __future__ import annotations

import threading
import uuid
from collections import Counter

import pytest

from resim.adapters.es2.client import HttpEs2Client
from resim.emulator.app import EmulatorConfig
from resim.emulator.server import EmulatorThread

pytestmark = pytest.mark.integration


def test_64_threads_never_get_the_same_profile_and_nothing_is_ordered_twice() -> None:
    config = EmulatorConfig(latency_ms=3, jitter_ms=3, seed=7)
    with (
        EmulatorThread(config, stock={"bulk": 192}) as smdp,
        HttpEs2Client(smdp.url, "resim", timeout=10.0) as client,
    ):
        got: list[str] = []
        errors: list[BaseException] = []
        lock = threading.Lock()

        def worker() -> None:
            try:
                for _ in range(3):
                    iccid = client.download_order(
                        call_id=uuid.uuid4().hex, profile_type="bulk"
                    ).iccid
                    client.confirm_order(call_id=uuid.uuid4().hex, iccid=iccid, release_flag=True)
                    with lock:
                        got.append(iccid)
            except BaseException as exc:  # reported by the assert below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(64)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert errors == []
        assert len(got) == len(set(got)) == 192
        executed = Counter(
            c.iccid for c in smdp.core.calls("downloadOrder") if c.outcome == "Executed-Success"
        )
        assert max(executed.values()) == 1 and sum(executed.values()) == 192
        assert {p.state.value for p in smdp.core.profiles()} == {"Released"}
