"""Are the demo's loopback ports free? One line naming the port and its flag if not.

``resim demo`` calls :func:`busy_port` before it starts anything, and the
Makefile runs this file with the machine's Python *before* ``make demo``
installs anything (so a taken port costs a second, not an install and a
traceback). It therefore imports nothing outside the standard library::

    python3 src/resim/entrypoints/demo_ports.py [--api-port N] [--smdp-port N] ...

prints nothing and exits 0 when every port is free, else prints the one line
and exits 1. Port 0 means "any free port" and is never busy.
"""

from __future__ import annotations

import argparse
import socket
import sys

HOST = "127.0.0.1"
# flag -> (default port, what listens there); `resim demo` takes the same flags
PORTS: dict[str, tuple[int, str]] = {
    "--api-port": (8600, "the API, portal and console"),
    "--smdp-port": (8700, "the SM-DP+ emulator"),
    "--smtp-port": (8625, "the mail capture"),
    "--sms-port": (8626, "the SMS capture"),
}


def _taken(port: int) -> bool:
    """Whether binding ``HOST:port`` fails, as the demo's servers bind (SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return True
    return False


def busy_port(chosen: dict[str, int], *, via_make: bool = False) -> str | None:
    """The one-line message for the first taken (or twice chosen) port, else None.

    ``chosen``: flag -> port, as in :data:`PORTS`.
    """
    seen: dict[int, str] = {}
    for flag, port in chosen.items():
        if port == 0:
            continue
        what = PORTS.get(flag, (0, "a demo listener"))[1]
        example = f"{flag} {port + 1}"
        move = f"make demo DEMO_ARGS='{example}'" if via_make else f"resim demo {example}"
        if port in seen:
            return f"port {port} is given to both {seen[port]} and {flag}: move one, e.g. {move}"
        seen[port] = flag
        if _taken(port):
            return (
                f"port {port} on {HOST} ({what}) is already in use: stop what holds it, "
                f"or move it with {flag} (0 takes any free port), e.g. {move}"
            )
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    for flag, (default, _what) in PORTS.items():
        parser.add_argument(flag, type=int, default=default)
    args, _others = parser.parse_known_args(argv)  # the demo's other flags are not ours
    chosen = {flag: getattr(args, flag[2:].replace("-", "_")) for flag in PORTS}
    problem = busy_port(chosen, via_make=True)
    if problem is None:
        return 0
    print(problem)
    return 1


if __name__ == "__main__":
    sys.exit(main())
