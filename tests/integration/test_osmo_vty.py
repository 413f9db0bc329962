"""The VTY client against a scripted telnet peer: what a real osmo-hlr rarely does.

The real daemon's answers are in test_corenet_detach.py; here the peer
misbehaves on purpose (silence, a dropped connection, a password prompt,
telnet negotiation split across reads) and the errors must be classified as
on the CTRL path: the network's faults retryable, the HLR's refusals not.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resim.adapters.corenet.osmo_vty import VtyClient, command_output, strip_telnet
from resim.errors import ExternalError

pytestmark = pytest.mark.integration

IAC_HELLO = b"\xff\xfb\x01\xff\xfb\x03\xff\xfe\x22\xff\xfd\x1f"  # what libosmovty sends
BANNER = b"Welcome to the OsmoHLR VTY interface\r\n\r\n" + IAC_HELLO + b"OsmoHLR> "

Reply = Callable[[socket.socket, str], bool]  # False: hang up


class ScriptedVty:
    """A telnet peer on loopback; ``reply`` answers each line after ``enable``."""

    def __init__(self, reply: Reply, *, banner: bytes = BANNER) -> None:
        self.reply = reply
        self.banner = banner
        self.lines: list[str] = []
        self.connections = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def close(self) -> None:
        self._server.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        with conn:
            # The banner in two pieces, split inside a telnet command.
            conn.sendall(self.banner[:45])
            conn.sendall(self.banner[45:])
            buf = b""
            while True:
                try:
                    chunk = conn.recv(1024)
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
                while b"\n" in buf:
                    raw, buf = buf.split(b"\n", 1)
                    line = raw.decode()
                    self.lines.append(line)
                    if line == "enable":
                        conn.sendall(b"enable\r\nOsmoHLR# ")
                    elif not self.reply(conn, line):
                        return


def answer(text: str) -> Reply:
    def reply(conn: socket.socket, line: str) -> bool:
        conn.sendall(f"{line}\r\n{text}".encode() + b"OsmoHLR# ")
        return True

    return reply


@pytest.fixture
def peer() -> Iterator[Callable[..., ScriptedVty]]:
    made: list[ScriptedVty] = []

    def make(reply: Reply, **kw: bytes) -> ScriptedVty:
        made.append(ScriptedVty(reply, **kw))
        return made[-1]

    yield make
    for p in made:
        p.close()


def failure(client: VtyClient, command: str = "show version") -> ExternalError:
    with pytest.raises(ExternalError) as info:
        client.run(command)
    return info.value


class TestAnswers:
    def test_output_is_the_text_between_the_echo_and_the_prompt(self, peer) -> None:
        vty = VtyClient("127.0.0.1", peer(answer("OsmoHLR 1.5.0\r\n")).port, timeout=2)
        assert vty.run("show version") == "OsmoHLR 1.5.0"
        assert vty.run("show version") == "OsmoHLR 1.5.0"  # one session, many commands

    def test_a_command_goes_out_as_one_line_ending_in_lf(self, peer) -> None:
        server = peer(answer(""))
        vty = VtyClient("127.0.0.1", server.port, timeout=2)
        vty.run("subscriber imsi 001010000000001 update network-access-mode none")
        assert server.lines == [
            "enable",
            "subscriber imsi 001010000000001 update network-access-mode none",
        ]

    @pytest.mark.parametrize(
        ("text", "code"),
        [
            ("% No subscriber for imsi = '001010000000001'\r\n", "CORE_UNKNOWN_IMSI"),
            ("% Unknown command.\r\n", "CORE_PROTOCOL_ERROR"),
            ("% Command incomplete.\r\n", "CORE_PROTOCOL_ERROR"),
            ("% There is no matched command.\r\n", "CORE_PROTOCOL_ERROR"),
            ("% Error: cannot set NAM\r\n", "CORE_REJECTED"),
        ],
    )
    def test_percent_lines_are_permanent_refusals(self, peer, text: str, code: str) -> None:
        vty = VtyClient("127.0.0.1", peer(answer(text)).port, timeout=2)
        err = failure(vty)
        assert (err.code, err.retryable) == (code, False)

    @pytest.mark.parametrize("bad", ["", "show\nversion", "show version\r", "zeige ü"])
    def test_a_command_is_one_line_of_printable_ascii(self, bad: str) -> None:
        with pytest.raises(ValueError):
            VtyClient("127.0.0.1", 9).run(bad)


class TestTheNetworksFaultsAreRetryable:
    def test_nobody_listening(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # bound, never listening: refused
        err = failure(VtyClient("127.0.0.1", port, timeout=1))
        assert (err.code, err.retryable) == ("CORE_UNAVAILABLE", True)

    def test_a_silent_peer_times_out(self, peer) -> None:
        vty = VtyClient("127.0.0.1", peer(lambda conn, line: True).port, timeout=0.3)
        err = failure(vty)
        assert (err.code, err.retryable) == ("CORE_UNAVAILABLE", True)

    def test_a_dropped_connection_is_retried_on_a_new_one(self, peer) -> None:
        answers = iter([False, True])

        def reply(conn: socket.socket, line: str) -> bool:
            if next(answers):
                conn.sendall(f"{line}\r\nOsmoHLR 1.5.0\r\nOsmoHLR# ".encode())
                return True
            return False  # hang up without an answer

        server = peer(reply)
        vty = VtyClient("127.0.0.1", server.port, timeout=2)
        err = failure(vty)
        assert (err.code, err.retryable) == ("CORE_UNAVAILABLE", True)
        assert vty.run("show version") == "OsmoHLR 1.5.0"
        assert server.connections == 2

    def test_a_connection_the_server_closed_while_idle_is_replaced_at_once(self, peer) -> None:
        def reply(conn: socket.socket, line: str) -> bool:
            conn.sendall(f"{line}\r\nOsmoHLR 1.5.0\r\nOsmoHLR# ".encode())
            return False  # answer, then close: an idle timeout on the server's side

        server = peer(reply)
        vty = VtyClient("127.0.0.1", server.port, timeout=2)
        assert vty.run("show version") == "OsmoHLR 1.5.0"
        assert vty.run("show version") == "OsmoHLR 1.5.0"  # no error for the caller
        assert server.connections == 2

    def test_a_vty_that_asks_for_a_password_is_refused_for_good(self, peer) -> None:
        vty = VtyClient("127.0.0.1", peer(answer(""), banner=b"\r\nPassword: ").port, timeout=2)
        err = failure(vty)
        assert (err.code, err.retryable) == ("CORE_REJECTED", False)
        assert "password" in err.message


class TestTelnet:
    @given(st.binary(max_size=200), st.binary(max_size=50))
    def test_text_around_negotiations_survives_whatever_they_are(
        self, noise: bytes, text: bytes
    ) -> None:
        clean = text.replace(b"\xff", b"")
        negotiations = b"".join(bytes([0xFF, 0xFB + b % 4, b]) for b in noise)
        assert strip_telnet(negotiations + clean) == clean
        strip_telnet(noise)  # never raises, whatever arrives

    def test_negotiations_are_removed_and_escaped_ff_kept(self) -> None:
        assert strip_telnet(IAC_HELLO + b"a\xff\xffb\xff\xfa\x1f\x00\x50\xff\xf0c") == (b"a\xffbc")

    def test_command_output_drops_echo_prompt_and_blank_lines(self) -> None:
        raw = "show x\r\n\r\n  a\r\n  b\r\nOsmoHLR# "
        assert command_output(raw, "show x") == "  a\n  b"
