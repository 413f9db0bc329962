"""The peer circuit of a worker process: closed, open for a pause, one probe, closed again."""

from __future__ import annotations

import datetime as dt

from resim.services.outbox.peer_circuit import (
    FAILURES_TO_OPEN,
    Admission,
    PeerCircuits,
    peer_of_kind,
    peer_of_target,
)

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def opened(circuits: PeerCircuits) -> None:
    for _ in range(FAILURES_TO_OPEN):
        circuits.failed("sms", T0, "SMS_UNAVAILABLE: down")


class TestNames:
    def test_attempt_targets_and_job_kinds_name_their_peer(self) -> None:
        assert peer_of_target("es2.downloadOrder") == "smdp"
        assert peer_of_target("sms.send") == "sms"
        assert peer_of_target("core.move_msisdn") == "core"
        assert peer_of_kind("esim.cancel_order") == "smdp"
        assert peer_of_kind("mail.send") == "mail"

    def test_camara_sinks_are_not_one_peer(self) -> None:
        assert peer_of_target("camara.sink") is None
        assert peer_of_kind("camara.deliver") is None


class TestTheCircuit:
    def test_it_opens_at_the_fifth_failure_in_a_row_and_says_so_once(self) -> None:
        circuits = PeerCircuits(first_pause=5)
        said = [circuits.failed("sms", T0, "down") for _ in range(FAILURES_TO_OPEN + 3)]
        assert said == [False] * (FAILURES_TO_OPEN - 1) + [True, False, False, False]
        assert circuits.state("sms", T0) == "open"
        assert circuits.admit("sms", at(1)) == Admission(wait=4.0)
        assert circuits.admit("mail", at(1)) == Admission()  # other peers unaffected

    def test_a_success_between_failures_starts_the_count_again(self) -> None:
        circuits = PeerCircuits()
        for _ in range(FAILURES_TO_OPEN - 1):
            circuits.failed("sms", T0, "down")
        circuits.succeeded("sms")
        assert circuits.failed("sms", T0, "down") is False
        assert circuits.state("sms", T0) == "closed"

    def test_after_the_pause_one_job_probes_and_the_others_wait(self) -> None:
        circuits = PeerCircuits(first_pause=5)
        opened(circuits)
        assert circuits.state("sms", at(5)) == "half_open"
        assert circuits.admit("sms", at(5)) == Admission(probe=True)
        assert circuits.admit("sms", at(5)) == Admission(wait=5.0)

    def test_a_failed_probe_doubles_the_pause_up_to_the_cap(self) -> None:
        circuits = PeerCircuits(first_pause=5, max_pause=15)
        opened(circuits)
        now = 5.0
        pauses = []
        for _ in range(3):
            assert circuits.admit("sms", at(now)).probe
            assert circuits.failed("sms", at(now), "down") is False  # no second alert
            circuits.probe_done("sms")
            wait = circuits.admit("sms", at(now)).wait
            assert wait is not None
            pauses.append(wait)
            now += wait
        assert pauses == [10.0, 15.0, 15.0]

    def test_a_successful_probe_closes_it(self) -> None:
        circuits = PeerCircuits(first_pause=5)
        opened(circuits)
        assert circuits.admit("sms", at(6)).probe
        circuits.succeeded("sms")
        circuits.probe_done("sms")
        assert circuits.state("sms", at(6)) == "closed"
        assert circuits.admit("sms", at(6)) == Admission()

    def test_a_probe_that_never_called_the_peer_lets_the_next_job_probe(self) -> None:
        circuits = PeerCircuits(first_pause=5)
        opened(circuits)
        assert circuits.admit("sms", at(6)).probe
        circuits.probe_done("sms")  # e.g. the text was skipped: the old SIM was retired
        assert circuits.admit("sms", at(6)).probe
