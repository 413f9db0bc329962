"""The bench report fails a run that lost a replacement or answered any HTTP 5xx (issue 11)."""

from __future__ import annotations

from pathlib import Path

from resim.bench.analysis import DbReport, PeerStats
from resim.bench.driver import DriverResult, Timeline
from resim.bench.probe import CpuUse
from resim.bench.report import failed_peer_calls, render, summary, verdict
from resim.bench.run import Options, Outcome

MAILS = {"replacement_requested": 1.0, "one_time_code": 2.0, "esim_ready": 3.0}


def outcome(*, finished: int, count: int, http_5xx: dict[str, int]) -> Outcome:
    timelines = [
        Timeline(
            f"r{i}", create_sent=0.0, done_mail=5.0, mails={**MAILS, "replacement_completed": 5.0}
        )
        for i in range(finished)
    ]
    options = Options(
        backend="sqlite",
        count=count,
        concurrency=32,
        workers=1,
        latency_ms=50,
        create_concurrency=16,
        pg_admin_url="",
        timeout=60,
    )
    peers = [
        PeerStats("es2.downloadOrder", 10, 0, 0.1, 0.2),
        PeerStats("sms.send", 30, 7, 0.01, 0.02),
        PeerStats("core.retire", 10, 1, 0.01, 0.02),
    ]
    return Outcome(
        options=options,
        driver=DriverResult(timelines, 0.0, 10.0, [], False),
        db=DbReport({"completed": finished}, {}, [], peers, []),
        cpu=CpuUse({"api": 1.0, "worker": 2.0}, 3.0, 20.0),
        counters={"api": {"commits": 20, "rollbacks": 4}, "worker1": {"commits": 60}},
        offset=0.0,
        workdir=Path("."),
        http_5xx=http_5xx,
        texts=30,
    )


def test_a_clean_run_passes_and_reports_its_figures_per_process() -> None:
    done = outcome(finished=4, count=4, http_5xx={})
    assert verdict(done) == []
    s = summary(done)
    assert s["transactions_per_replacement_by_process"] == {"api": 6.0, "worker1": 15.0}
    assert s["cpu_ms_per_replacement"] == {"api": 250.0, "worker": 500.0}
    assert s["failed_peer_calls"] == {"SM-DP+": 0, "SMS": 7, "mail": 0, "core network": 1}
    assert not any(line.startswith("FAILED") for line in render(done))


def test_a_lost_replacement_fails_the_run() -> None:
    assert verdict(outcome(finished=3, count=4, http_5xx={})) == ["1 of 4 replacements lost"]


def test_any_server_error_fails_the_run_and_names_the_route() -> None:
    bad = outcome(finished=4, count=4, http_5xx={"POST /v1/requests": 2})
    assert verdict(bad) == ["2 HTTP 5xx answers (POST /v1/requests x2)"]
    assert "FAILED       2 HTTP 5xx answers (POST /v1/requests x2)" in render(bad)
    assert failed_peer_calls(bad)["SMS"] == 7


def test_resim_cpu_is_reported_apart_from_the_bench_parts_against_the_targets() -> None:
    done = outcome(finished=4, count=4, http_5xx={})
    done.cpu = CpuUse(
        {
            "api": 0.04,
            "worker": 0.04,
            "postgresql": 0.02,
            "emulator": 0.008,
            "bench (driver, mail + SMS sinks)": 0.032,
            "pg-shared processes (all databases)": 1.0,
        },
        3.0,
        20.0,
    )
    b = summary(done)["cpu_budget"]
    assert b["resim_cpu_ms"] == 25.0  # API + worker + PostgreSQL: 0.1 s / 4
    assert b["bench_parts_cpu_ms"] == 10.0  # emulator + bench process, shared ones left out
    assert b["resim_cpu_ratio"] == 1.0
    assert b["rate_target_per_s"] == 50.0
    text = "\n".join(render(done))
    assert "resim: API + workers + PostgreSQL server (ms)" in text
    assert "bench parts: emulator, driver, mail + SMS sinks (ms)" in text
