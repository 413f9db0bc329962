"""Turning an :class:`~resim.bench.run.Outcome` into the printed report and a JSON summary."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from resim.bench.analysis import percentile
from resim.bench.driver import Timeline
from resim.bench.profiling import cprofile_top, top_frames
from resim.bench.run import ES2_CALLS_PER_REPLACEMENT, Outcome

# The peers a replacement talks to, by the prefix of their attempt rows' target.
PEERS = {"es2": "SM-DP+", "sms": "SMS", "mail": "mail", "core": "core network"}

# Issue 16's targets: resim's own CPU per replacement (API + workers + the
# PostgreSQL server) and the end-to-end rate with everything on this machine.
RESIM_CPU_TARGET_MS = 25.0
RATE_TARGET = 50.0
# Which CPU groups (run.py) are resim and which are the bench's own parts.
RESIM_GROUPS = ("api", "worker", "postgresql")
BENCH_GROUPS = ("emulator", "bench")


def _side(group: str) -> str:
    """ "resim", "bench" or "shared" (neither: e.g. PostgreSQL's background
    processes, which serve every database on the server) for a CPU group name."""
    head = group.split(" ", 1)[0]
    if head in RESIM_GROUPS:
        return "resim"
    return "bench" if head in BENCH_GROUPS else "shared"


def cpu_sides(outcome: Outcome) -> dict[str, float]:
    """CPU ms per finished replacement: resim's (API + workers + PostgreSQL server)
    and the bench parts' (emulator, driver, sinks)."""
    n = max(outcome.finished, 1)
    sides = {"resim": 0.0, "bench": 0.0, "shared": 0.0}
    for group, seconds in outcome.cpu.by_group.items():
        sides[_side(group)] += seconds * 1000 / n
    return sides


def budget(outcome: Outcome) -> dict[str, float]:
    """The figures against issue 16's targets, all from this one run."""
    sides = cpu_sides(outcome)
    cores = outcome.cpu.cores or 1
    machine_ms = cores * 1000.0 / RATE_TARGET  # CPU the machine has per replacement at 50/s
    return {
        "resim_cpu_ms": round(sides["resim"], 2),
        "bench_parts_cpu_ms": round(sides["bench"], 2),
        "resim_cpu_target_ms": RESIM_CPU_TARGET_MS,
        "resim_cpu_ratio": round(sides["resim"] / RESIM_CPU_TARGET_MS, 2),
        "machine_cpu_ms_at_target_rate": round(machine_ms, 1),
        "run_cpu_ratio_to_machine_at_target_rate": round(
            (sides["resim"] + sides["bench"]) / machine_ms, 2
        ),
        "rate_target_per_s": RATE_TARGET,
        "rate_ratio": round(outcome.throughput / RATE_TARGET, 3),
        # What the cores could carry if only resim ran (CPU-bound estimate).
        "resim_only_rate_bound_per_s": round(cores * 1000.0 / sides["resim"], 1)
        if sides["resim"]
        else 0.0,
    }


# (label, start, end): each a function of (timeline, db times in monotonic seconds)
Point = Callable[[Timeline, dict[str, float | None]], float | None]

PHASES: list[tuple[str, Point, Point]] = [
    ("create: POST /v1/requests", lambda t, d: t.create_sent, lambda t, d: t.created),
    ("one-time code mail (mail.send job)", lambda t, d: t.created, lambda t, d: t.code_mail),
    (
        "verify + risk + approve: POST .../verification",
        lambda t, d: t.code_mail,
        lambda t, d: t.verified,
    ),
    (
        "order + confirm at SM-DP+ (esim.provision job)",
        lambda t, d: t.verified,
        lambda t, d: d["ready"],
    ),
    ("'eSIM ready' mail (mail.send job)", lambda t, d: d["ready"], lambda t, d: t.ready_mail),
    (
        "install: GET activation, phone, 2 callbacks",
        lambda t, d: t.ready_mail,
        lambda t, d: t.installed,
    ),
    ("cut-over (core.cutover job)", lambda t, d: t.installed, lambda t, d: d["completed"]),
    ("'completed' mail (mail.send job)", lambda t, d: d["completed"], lambda t, d: t.done_mail),
]


def _db_points(outcome: Outcome, tl: Timeline) -> dict[str, float | None]:
    times = outcome.db.requests.get(tl.request_id)
    if times is None:
        return {"ready": None, "completed": None}

    def mono(epoch: float | None) -> float | None:
        return None if epoch is None else epoch - outcome.offset

    return {"ready": mono(times.ready), "completed": mono(times.completed)}


def phase_table(outcome: Outcome) -> list[tuple[str, float, float, float]]:
    """(label, p50, p95, mean) in seconds for each phase, over finished replacements."""
    done = [tl for tl in outcome.driver.timelines if tl.finished and tl.error is None]
    points = {tl.request_id: _db_points(outcome, tl) for tl in done}
    rows = []
    for label, start, end in PHASES:
        spans = []
        for tl in done:
            a, b = start(tl, points[tl.request_id]), end(tl, points[tl.request_id])
            if a is not None and b is not None:
                spans.append(b - a)
        mean = statistics.fmean(spans) if spans else 0.0
        rows.append((label, percentile(spans, 0.5), percentile(spans, 0.95), mean))
    return rows


def latencies(outcome: Outcome) -> list[float]:
    return [
        tl.finished_at - tl.create_sent
        for tl in outcome.driver.timelines
        if tl.finished_at is not None and tl.create_sent is not None and tl.error is None
    ]


def failed_peer_calls(outcome: Outcome) -> dict[str, int]:
    """Failed calls per peer (every peer listed, zeros included)."""
    failed = dict.fromkeys(PEERS.values(), 0)
    for p in outcome.db.peers:
        name = PEERS.get(p.target.split(".", 1)[0], p.target)
        failed[name] = failed.get(name, 0) + p.failed
    return failed


def transactions_by_process(outcome: Outcome) -> dict[str, float]:
    """Commits + rollbacks per replacement, per process (counted on its engine)."""
    n = max(outcome.finished, 1)
    return {
        name: round((int(str(c.get("commits", 0))) + int(str(c.get("rollbacks", 0)))) / n, 1)
        for name, c in sorted(outcome.counters.items())
    }


def verdict(outcome: Outcome) -> list[str]:
    """Why the run failed (empty when it did not): lost replacements, HTTP 5xx."""
    problems = []
    if outcome.lost:
        problems.append(f"{outcome.lost} of {outcome.options.count} replacements lost")
    errors = sum(outcome.http_5xx.values())
    if errors:
        routes = ", ".join(f"{k} x{v}" for k, v in sorted(outcome.http_5xx.items()))
        problems.append(f"{errors} HTTP 5xx answers ({routes})")
    return problems


def summary(outcome: Outcome) -> dict[str, Any]:
    """The headline figures as plain data (for --json and the docs)."""
    opts, n = outcome.options, max(outcome.finished, 1)
    lat = latencies(outcome)
    counters = outcome.counters.values()
    commits = sum(int(str(c.get("commits", 0))) for c in counters)
    rollbacks = sum(int(str(c.get("rollbacks", 0))) for c in counters)
    statements = sum(int(str(c.get("statements", 0))) for c in counters)
    return {
        "backend": opts.backend,
        "count": opts.count,
        "finished": outcome.finished,
        "elapsed_s": round(outcome.elapsed, 3),
        "replacements_per_s": round(outcome.throughput, 1),
        "limit_per_s": round(opts.limit, 1),
        "ratio": round(outcome.throughput / opts.limit, 3) if opts.limit else None,
        "p50_s": round(percentile(lat, 0.5), 3),
        "p95_s": round(percentile(lat, 0.95), 3),
        "workers": opts.workers,
        "concurrency": opts.concurrency,
        "latency_ms": opts.latency_ms,
        "transactions_per_replacement": round((commits + rollbacks) / n, 1),
        "commits_per_replacement": round(commits / n, 1),
        "statements_per_replacement": round(statements / n, 1),
        "cpu_ms_per_replacement": {
            k: round(v * 1000 / n, 2) for k, v in outcome.cpu.by_group.items()
        },
        "cpu_budget": budget(outcome),
        "transactions_per_replacement_by_process": transactions_by_process(outcome),
        "machine_utilisation": round(outcome.cpu.utilisation, 3),
        "errors": len(outcome.driver.errors),
        "lost": outcome.lost,
        "http_5xx": sum(outcome.http_5xx.values()),
        "http_5xx_by_route": dict(sorted(outcome.http_5xx.items())),
        "failed_peer_calls": failed_peer_calls(outcome),
        "texts": outcome.texts,
        "callbacks_unacknowledged": len(outcome.driver.unacknowledged_callbacks),
    }


def render_budget(outcome: Outcome) -> list[str]:
    """resim's CPU apart from the bench's, against issue 16's targets (one run)."""
    b = budget(outcome)

    def row(
        label: str, measured: float, target: float | None = None, ratio: float | None = None
    ) -> str:
        tail = f"{target:8.0f}  {ratio:6.2f}" if target is not None and ratio is not None else ""
        return f"  {label:<52}{measured:9.2f} {tail}".rstrip()

    return [
        "",
        f"{'CPU per replacement vs targets (this run)':<54}measured   target   ratio",
        row(
            "resim: API + workers + PostgreSQL server (ms)",
            b["resim_cpu_ms"],
            RESIM_CPU_TARGET_MS,
            b["resim_cpu_ratio"],
        ),
        row("bench parts: emulator, driver, mail + SMS sinks (ms)", b["bench_parts_cpu_ms"]),
        row(
            f"resim + bench parts vs the machine's at {RATE_TARGET:.0f}/s (ms)",
            b["resim_cpu_ms"] + b["bench_parts_cpu_ms"],
            b["machine_cpu_ms_at_target_rate"],
            b["run_cpu_ratio_to_machine_at_target_rate"],
        ),
        row("replacements/s end to end", outcome.throughput, RATE_TARGET, b["rate_ratio"]),
        row(
            f"resim alone on {outcome.cpu.cores} cores, CPU bound (replacements/s)",
            b["resim_only_rate_bound_per_s"],
        ),
    ]


def render(outcome: Outcome) -> list[str]:
    opts, s = outcome.options, summary(outcome)
    n, elapsed = max(outcome.finished, 1), max(outcome.elapsed, 1e-9)
    out = [
        f"== {opts.backend}: bulk reissue of {opts.count} eSIMs ==",
        f"setup        API process; {opts.workers} worker process(es) x {opts.concurrency} jobs"
        f" in flight; SM-DP+ emulator +{opts.latency_ms:g} ms per ES2+ call; SMTP and SMS"
        f" sinks; BSS opens {opts.create_concurrency} requests at a time over HTTP",
        f"result       {outcome.finished}/{opts.count} completed in {outcome.elapsed:.2f} s:"
        f" {s['replacements_per_s']:.1f} replacements/s end to end",
        f"limit        {opts.workers} x {opts.concurrency} / ({ES2_CALLS_PER_REPLACEMENT} ES2+"
        f" calls x {opts.latency_ms / 1000:.3f} s) = {opts.limit:.0f} replacements/s;"
        f" ratio {s['ratio']:.2f}",
        f"per replacement  p50 {s['p50_s']:.2f} s, p95 {s['p95_s']:.2f} s"
        " (its create sent -> its last mail stored)",
        f"errors       {outcome.lost} replacements lost; HTTP 5xx {s['http_5xx']}; failed peer"
        " calls "
        + ", ".join(f"{k} {v}" for k, v in s["failed_peer_calls"].items())
        + f"; {outcome.texts} texts stored by the SMS sink",
        "",
        "where a replacement's time goes (s)             p50     p95    mean",
    ]
    for label, p50, p95, mean in phase_table(outcome):
        out.append(f"  {label:<46}{p50:7.3f} {p95:7.3f} {mean:7.3f}")
    out += ["", "jobs (s)            done  other  due->call p50/p95  in peer  due->done p50/p95"]
    for j in outcome.db.jobs:
        out.append(
            f"  {j.kind:<18}{j.done:5d} {j.not_done:6d}   {j.wait_p50:7.3f} {j.wait_p95:7.3f}"
            f"  {j.peer_mean:7.3f}   {j.total_p50:7.3f} {j.total_p95:7.3f}"
        )
    out += ["", "peer calls          calls  failed  mean ms  p95 ms"]
    for p in outcome.db.peers:
        out.append(
            f"  {p.target:<18}{p.calls:6d} {p.failed:7d} {p.mean * 1000:8.1f} {p.p95 * 1000:7.1f}"
        )
    out += ["", "CPU                              ms/replacement  cores busy"]
    for group, seconds in sorted(outcome.cpu.by_group.items(), key=lambda kv: -kv[1]):
        out.append(f"  {group:<32}{seconds * 1000 / n:12.2f}  {seconds / elapsed:10.2f}")
    other = max(0.0, outcome.cpu.machine_busy - sum(outcome.cpu.by_group.values()))
    out.append(
        f"  {'other processes (not this run)':<32}{other * 1000 / n:12.2f}  {other / elapsed:10.2f}"
    )
    out.append(
        f"  machine: {outcome.cpu.utilisation:.0%} of all cores busy;"
        f" load average before the run {outcome.load_before}"
    )
    out += render_budget(outcome)
    out += ["", "database (counted on the API's and workers' engines)"]
    for name, c in sorted(outcome.counters.items()):
        commits, rollbacks = int(str(c.get("commits", 0))), int(str(c.get("rollbacks", 0)))
        statements = int(str(c.get("statements", 0)))
        out.append(
            f"  {name:<10} {(commits + rollbacks) / n:6.1f} transactions ({commits / n:.1f}"
            f" commits + {rollbacks / n:.1f} rollbacks), {statements / n:6.1f} statements"
            " per replacement"
        )
    out.append(
        f"  total      {s['transactions_per_replacement']:.1f} transactions,"
        f" {s['statements_per_replacement']:.1f} statements per replacement"
    )
    for name, path in sorted(outcome.profiles.items()):
        samples, frames = top_frames(path)
        mode = "all threads, idle included" if opts.profile_wall else "--gil"
        out += ["", f"profile of {name} (py-spy {mode}, {samples} samples; {path})"]
        for frame, share in frames:
            out.append(f"  {share:6.1%}  {frame}")
    for name, path in sorted(outcome.cprofiles.items()):
        total, rows = cprofile_top(path)
        out += [
            "",
            f"cProfile of {name} ({total:.1f} s of own time in all threads; {path})",
            "    self    cum  function",
        ]
        for frame, own, cum in rows:
            out.append(f"  {own:6.1%} {cum:6.1%}  {frame}")
    states = ", ".join(f"{k} {v}" for k, v in sorted(outcome.db.states.items()))
    out += ["", f"requests     {states}"]
    problems = outcome.driver.errors[:5] + outcome.db.dead_jobs[:5]
    for problem in problems:
        out.append(f"  problem: {problem}")
    late = outcome.driver.unacknowledged_callbacks
    if late:
        out.append(
            f"  note: {len(late)} install(s) whose ES2+ callbacks the API did not answer"
            f" within the emulator's 3 x 5 s, e.g. {late[0]}"
        )
    for why in verdict(outcome):
        out.append(f"FAILED       {why}")
    return out
