"""``resim demo --walkthrough``: one replacement through the public API, step by step.

The BSS opens the request with its API key, the customer verifies with the code
read from the captured mail, a reviewer signs in with password and TOTP when the
risk check holds the request, the emulated phone installs the eSIM, and the
cut-over and SIM change are printed. ``make walkthrough`` and the end-to-end
tests run it against a :class:`~resim.entrypoints.demo.DemoStack`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from resim.adapters.mail.capture import read_mailbox
from resim.entrypoints.demo import DemoStack


class WalkthroughError(RuntimeError):
    pass


def walkthrough(
    stack: DemoStack, say: Callable[[str], None] = print, *, timeout: float = 60.0
) -> dict[str, Any]:
    """One replacement through the public API; return the final request view.

    The BSS calls with its API key, the customer verifies without credentials
    and gets a session for their request, a reviewer signs in with password
    and TOTP to approve.
    """
    api = stack.api.url
    line = stack.data.lines[0]  # a Danish line whose e-mail changed recently: held for review
    with httpx.Client(base_url=api, timeout=10, headers=stack.client_headers) as http:

        def wait_for(request_id: str, states: set[str]) -> dict[str, Any]:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                view: dict[str, Any] = (
                    http.get(f"/v1/requests/{request_id}").raise_for_status().json()
                )
                if view["state"] in states:
                    return view
                time.sleep(0.1)
            raise WalkthroughError(f"request {request_id} did not reach {states}")

        say(f"1. request    POST /v1/requests for {line.msisdn} (reason: lost)")
        created = (
            http.post(
                "/v1/requests", json={"msisdn": line.msisdn, "reason": "lost", "actor": "demo-bss"}
            )
            .raise_for_status()
            .json()
        )
        rid = created["id"]
        say(
            f"              -> {created['state']}, ref {created['ref']}, fee "
            f"{created['fee']['amount_minor'] / 100:.2f} {created['fee']['currency']}"
        )
        code = _code_from_mail(stack.mail_dir, line.email, timeout)
        say(f"2. verify     one-time code read from the captured mail to {line.email}")
        verified = httpx.post(  # the customer: no credentials
            f"{api}/v1/requests/{rid}/verification",
            json={"otp": code, **({"pin": line.pin} if line.pin else {})},
            timeout=10,
        ).raise_for_status()
        state = verified.json()["state"]
        customer = {"Authorization": f"Bearer {verified.json()['session_token']}"}
        say(f"              -> {state}; old SIM suspended at once because the phone was lost")
        say("              the customer got a session for this request only")
        if state == "in_review":
            view = http.get(f"/v1/requests/{rid}").json()
            for reason in view["risk"]["reasons"]:
                say(f"              risk: {reason['rule']}: {reason['reason']}")
            who = stack.walkthrough_reviewer or stack.credentials.staff["reviewer"]
            reviewer = stack.sign_in(who)
            say(f"3. sign-in    {who.username}: password + TOTP code -> staff session")
            http.post(
                f"/v1/requests/{rid}/review",
                json={"decision": "approve", "note": "customer called from the number on file"},
                headers=reviewer,
            ).raise_for_status()
            say("   approval   the fraud reviewer approved it")
        else:
            say("3. approval   the risk check allowed it")
        wait_for(rid, {"ready"})
        act = http.get(f"/v1/requests/{rid}/activation", headers=customer).raise_for_status().json()
        qr_path = stack.settings.data_dir / f"activation-{created['ref']}.png"
        qr_path.write_bytes(
            http.get(act["qr_png_url"], headers=customer).raise_for_status().content
        )
        say(f"4. ready      activation code {act['activation_code']} (customer session)")
        say(f"              SM-DP+ address {act['smdp_address']}, matching ID {act['matching_id']}")
        say(f"              QR code written to {qr_path}")
        say(f"              iPhone one-tap: {act['ios_install_url'][:80]}...")
        phone = httpx.post(
            f"{stack.emulator.url}/emulator/phone/install",
            json={"activation_code": act["qr_payload"]},
            timeout=20,
        )
        phone.raise_for_status()
        say(
            "5. install    the emulated phone downloaded and installed the profile; "
            "the SM-DP+ sent its callbacks"
        )
        done = wait_for(rid, {"completed", "failed"})
        if done["state"] != "completed":
            raise WalkthroughError(f"request ended {done['state']}: {done['failure']}")
        say(
            f"6. cut-over   {line.msisdn} now lives on {done['new_iccid']}; "
            f"{done['old_iccid']} is retired"
        )
        change = done["sim_change"]
        say(
            f"7. record     SIM change at {change['changed_at']}: {change['old_iccid']} -> "
            f"{change['new_iccid']}"
        )
        time.sleep(0.5)
        mails = [m for m in read_mailbox(stack.mail_dir) if line.email in m.to]
        say(
            f"   mail       {len(mails)} messages to the customer: "
            + ", ".join(m.subject for m in mails)
        )
        return done


def _code_from_mail(directory: Path, email: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for mail in reversed(read_mailbox(directory)):
            if (
                email in mail.to
                and mail.kind == "one_time_code"
                and (found := re.search(r"^\s+(\d{6})\s*$", mail.text, re.M))
            ):
                return found.group(1)
        time.sleep(0.1)
    raise WalkthroughError(f"no one-time code arrived for {email}")
