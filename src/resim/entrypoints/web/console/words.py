"""The console's words for the codes the services use (issue 14.1).

A console page never shows a raw code: a request's state, its reason, its
channel, a risk rule, a staff role or a staff id ("staff:<id>"). Templates get
:class:`Words` as ``words`` and say ``words.state(r.state)``,
``words.who(r.actor)`` and so on; an unknown code is shown as a translated
"other" with the code in parentheses, so a new code is visible but never bare.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from gettext import NullTranslations
from typing import Any


def N_(message: str) -> str:
    """Mark a message for extraction; it is translated when shown."""
    return message


STATES = {
    "requested": N_("Waiting for verification"),
    "verified": N_("Verified; fraud check running"),
    "in_review": N_("Held for review"),
    "approved": N_("Approved"),
    "provisioning": N_("Preparing the new SIM"),
    "ready": N_("Ready"),
    "completed": N_("Completed"),
    "rejected": N_("Rejected"),
    "cancelled": N_("Cancelled"),
    "expired": N_("Expired"),
    "failed": N_("Failed"),
}
REASONS = {
    "lost": N_("Lost"),
    "stolen": N_("Stolen"),
    "damaged": N_("Broken"),
    "device_change": N_("New phone"),
    "profile_deleted": N_("eSIM deleted"),
}
CHANNELS = {
    "portal": N_("Portal"),
    "agent": N_("Store or hotline agent"),
    "api": N_("Operator's app (API)"),
}
ROLES = {"agent": N_("Agent"), "reviewer": N_("Fraud reviewer"), "admin": N_("Administrator")}
OUTCOMES = {
    "allow": N_("allowed"),
    "step_up": N_("stronger verification"),
    "review": N_("needs review"),
    "deny": N_("refused"),
}
# One sentence per risk rule (domain.risk.RULES and domain.agent_channel.RULE): the
# rules' own reasons are English with numbers, these are what a reviewer reads.
RULES = {
    "sim_change_lock": N_("The customer's SIM-change lock is on (or was overridden by an agent)."),
    "recent_replacement": N_("The SIM of this line was replaced recently."),
    "recent_email_change": N_("The e-mail address on the account changed recently."),
    "recent_password_change": N_("The account's password changed recently."),
    "recent_address_change": N_("The postal address on the account changed recently."),
    "lock_toggled_recently": N_("The SIM-change lock was turned on or off recently."),
    "recent_port_in": N_("The number was ported in recently."),
    "new_device": N_("The request came from a device not seen before (or sent none)."),
    "new_country": N_("The request came from a country not seen before (or it is unknown)."),
    "agent_history": N_("The agent opened an unusual number of requests recently."),
    "prior_fraud_flag": N_("The account was flagged for fraud before."),
    "agent_confirmation": N_(
        "Opened or verified by staff without a factor of the customer's own: a second "
        "person must look at it."
    ),
}
FAILURES = {
    "REVIEW_REJECTED": N_("Rejected by a reviewer"),
    "RISK_DENIED": N_("Refused by the fraud check"),
}
ACTORS = {
    "risk-engine": N_("the fraud check"),
    "customer": N_("the customer"),
    "system": N_("resim"),
    "worker": N_("resim"),
}
OTHER = N_("other (%(code)s)")
FORMER_STAFF = N_("a former staff member")
API_CLIENT = N_("an API client")
APPROVALS = N_("%(done)s of %(needed)s")
APPROVALS_BY = N_("%(done)s of %(needed)s: %(names)s")
STAFF_ID = re.compile(r"staff:[0-9A-Za-z_-]+")


@dataclass
class Words:
    """Codes in words, in one locale; ``staff`` maps "staff:<id>" to display names."""

    translations: NullTranslations
    staff: dict[str, str] = field(default_factory=dict)

    def _(self, message: str) -> str:
        return self.translations.gettext(message)

    def _of(self, table: dict[str, str], code: Any) -> str:
        text = table.get(str(code or ""))
        if text is not None:
            return self._(text)
        return self._(OTHER) % {"code": code}

    def state(self, code: Any) -> str:
        return self._of(STATES, code)

    def reason(self, code: Any) -> str:
        return self._of(REASONS, code)

    def channel(self, code: Any) -> str:
        return self._of(CHANNELS, code)

    def role(self, code: Any) -> str:
        return self._of(ROLES, code)

    def outcome(self, code: Any) -> str:
        return self._of(OUTCOMES, code)

    def rule(self, code: Any) -> str:
        return self._of(RULES, code)

    def failure(self, failure: dict[str, Any] | None) -> str:
        """Why a request stopped: a known code in words, else the stored reason."""
        if not failure:
            return ""
        text = FAILURES.get(str(failure.get("code") or ""))
        if text is not None:
            return self._(text)
        return self.scrub(str(failure.get("reason") or failure.get("code") or ""))

    def who(self, actor: Any) -> str:
        """A person or process by name: staff by display name, never their id."""
        name = str(actor or "")
        if name.startswith("staff:"):
            return self.staff.get(name) or self._(FORMER_STAFF)
        if name.startswith("client:"):
            return self._(API_CLIENT)
        if name.startswith("customer"):
            return self._(ACTORS["customer"])
        text = ACTORS.get(name)
        return self._(text) if text else self._(OTHER) % {"code": name}

    def approvals(self, review: dict[str, Any]) -> str:
        """``1 of 2: Rita`` (or ``0 of 1``)."""
        done = review.get("approvals") or []
        values = {"done": len(done), "needed": review.get("required_approvals") or 1}
        if not done:
            return self._(APPROVALS) % values
        names = ", ".join(self.who(a.get("by")) for a in done)
        return self._(APPROVALS_BY) % {**values, "names": names}

    def scrub(self, text: str) -> str:
        """Free text with every staff id replaced by the person's name."""
        return STAFF_ID.sub(lambda m: self.who(m.group(0)), text)

    def value(self, value: Any) -> str:
        """An audit detail's value in words where it is a code this module knows."""
        text = str(value)
        for table in (STATES, REASONS, CHANNELS, RULES, OUTCOMES):
            if text in table:
                return self._(table[text])
        for code, words in RULES.items():
            text = text.replace(f"'{code}'", self._(words))
        return self.scrub(text)
