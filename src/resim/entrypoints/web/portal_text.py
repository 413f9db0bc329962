"""The portal's messages that code chooses (errors, states), marked for extraction.

``N_`` only marks a string for Babel's extractor; templates translate it with
``_()`` at render time, in the page's language. Service errors are mapped by
their stable ``code``; their English ``message`` is never shown to customers.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from resim.errors import ResimError, TooManyAttempts


def N_(message: str) -> str:
    return message


@dataclass(frozen=True)
class PageError:
    """A message for the customer: a msgid and its placeholders."""

    msgid: str
    params: dict[str, Any] = field(default_factory=dict)
    field: str | None = None  # the form field it is about, if one

    # Issue 12: shown under the message by the error box (plural forms in the
    # template). Kept in ``params`` (plain ints), so they travel wherever the
    # message does (a redirect's flash cookie included).
    @property
    def left(self) -> int | None:
        """For "You have N attempts left." (honest: ``services.attempts_left``)."""
        value = self.params.get(LEFT)
        return value if isinstance(value, int) else None

    @property
    def wait_seconds(self) -> int | None:
        """For a countdown: "You can try again in N minutes"."""
        value = self.params.get(WAIT)
        return value if isinstance(value, int) and value > 0 else None


LEFT, WAIT = "attempts_left", "wait_seconds"


# The portal's name before the number tells which brand the customer is with.
NEUTRAL_NAME = N_("New SIM or eSIM")
GENERIC = N_("Something went wrong. Nothing was changed. Please try again.")
FORM_EXPIRED = N_("This form has expired. Nothing was changed. Please try again.")

BY_CODE: dict[str, str] = {
    "INVALID_MSISDN": N_(
        "That does not look like a mobile number. Include the country code, "
        "for example +45 20 12 34 56."
    ),
    "AMBIGUOUS_MSISDN": N_(
        "That number exists in more than one country. Type it with the country code, "
        "for example +45 20 12 34 56."
    ),
    "LINE_NOT_FOUND": N_(
        "We could not find a subscription with that number. Check the number and the country code."
    ),
    "REQUEST_ALREADY_OPEN": N_(
        "There is already a replacement request for this number. Every e-mail and text "
        "message we sent about it has a link back to it, or start again with your number: "
        "we e-mail you a new link."
    ),
    "SIM_CHANGE_LOCKED": N_(
        "This number has a SIM-change lock, so no new SIM can be ordered. "
        "Turn the lock off first; for your safety this takes some time."
    ),
    "ACCOUNT_FROZEN": N_(
        "Replacements are paused on this account after suspicious activity. "
        "Please contact us or visit a store with an identity document."
    ),
    "NO_VERIFICATION_METHOD": N_(
        "We cannot confirm who you are online. Please visit a store with an identity document."
    ),
    "LINE_HAS_NO_SIM": N_(
        "This number has no SIM yet, so there is nothing to replace. "
        "It gets its SIM when it is activated; contact us if that is taking too long."
    ),
    "INVALID_REASON": N_("Choose why you need a new SIM."),
    "INVALID_EID": N_("An EID has 32 digits. Leave the field empty if you are not sure."),
    "VERIFICATION_FAILED": N_("That did not match."),
    "OTP_EXPIRED": N_("The code has expired. Ask for a new code below."),
    "VERIFICATION_INCOMPLETE": N_("Fill in every field of the way you chose to confirm."),
    "NOT_AWAITING_VERIFICATION": N_(
        "This request no longer waits for a code. The status page shows where it is."
    ),
    "NOT_AWAITING_STEP_UP": N_("This request does not need another check now."),
    "BACKING_OFF": N_("Too many attempts in a row. Please wait before you try again."),
    "ATTEMPTS_CAPPED": N_("Too many failed attempts. This is blocked for now; please contact us."),
    "TOO_MANY_ATTEMPTS": N_("Too many attempts in a row. Please wait before you try again."),
    "REQUEST_NOT_FOUND": N_("We could not find this request."),
    "NOT_READY": N_("This cannot be done now: the request has moved on."),
    "ALREADY_INSTALLED": N_("Your new eSIM is already installed; there is nothing to reissue."),
    "INSTALL_ALREADY_KNOWN": N_(
        "We already know your new eSIM is installed; your number moves to it in a moment."
    ),
    "REQUEST_CLOSED": N_("This request is already closed."),
    "FEE_NOT_ACCEPTED": N_("Please confirm that you accept the fee."),
    "NUMBER_REQUIRED": N_("Enter your mobile number."),
    "DELIVERY_REQUIRED": N_("Choose how you want to get your new SIM."),
    "DELIVERY_MODE_NOT_OFFERED": N_(
        "This way of getting a new SIM is not offered for your number."
    ),
    "NO_POSTAL_ADDRESS": N_(
        "We have no postal address for you, so we cannot send a card. "
        "Collect it in a store instead, or contact us."
    ),
    "ICCID_INVALID": N_(
        "That is not a valid ICCID. Type all the digits printed on the card, starting with 89."
    ),
    "ICCID_MISMATCH": N_(
        "That is not the number of the card we sent you. Check the digits and try again."
    ),
    "NOT_AWAITING_ACTIVATION": N_(
        "There is nothing to confirm on this request now. Nothing was changed; this page "
        "shows where it is."
    ),
    "RECONFIRM_FAILED": N_("That did not match. Check and try again."),
    "SESSION_ENDED": N_(
        "For your safety this needs you to confirm who you are again. Nothing was changed."
    ),
    "CONTINUE_LINK_INVALID": N_(
        "This link is not valid. Nothing was changed. Copy the whole link from our e-mail "
        "or text message, or start again with your number."
    ),
    "CONTINUE_LINK_EXPIRED": N_(
        "This link has expired. Nothing was changed. Start again with your number: if a "
        "request is under way, we e-mail you a new link to it."
    ),
}

DELIVERY_LABELS: dict[str, str] = {
    "esim": N_("eSIM: ready in minutes, installed with a QR code"),
    "pickup": N_("SIM card, collected in one of our stores (bring an identity document)"),
    "courier": N_("SIM card, sent by courier to the postal address we have on file"),
}


def error_for(
    exc: ResimError,
    *,
    now: dt.datetime,
    when: Callable[[dt.datetime], str],
    attempts_left: int | None = None,
    wait_seconds: int | None = None,
) -> PageError:
    """The customer's message for a service error (never its English ``message``).

    ``attempts_left`` and ``wait_seconds`` are the request's standing after a
    failure (``services.attempts_left``): a wrong answer says how many more are
    checked and, while backing off, counts down to the next; a wrong answer
    that used the last attempt says what the block is. A refusal to check
    (TooManyAttempts) counts down its ``retry_after``, never a clock time.
    """
    code = exc.code
    if isinstance(exc, TooManyAttempts) and code not in BY_CODE:
        code = "TOO_MANY_ATTEMPTS"
    if code == "VERIFICATION_FAILED" and attempts_left is None:
        return PageError(BY_CODE["RECONFIRM_FAILED"])
    if code == "VERIFICATION_FAILED" and attempts_left == 0:
        return PageError(BY_CODE["ACCOUNT_FROZEN"])
    msgid = BY_CODE.get(code, GENERIC)
    if code == "VERIFICATION_FAILED":
        params: dict[str, Any] = {LEFT: attempts_left}
        if wait_seconds:
            params[WAIT] = wait_seconds
        return PageError(msgid, params)
    if code in ("BACKING_OFF", "TOO_MANY_ATTEMPTS"):
        wait = getattr(exc, "retry_after", None) or 60.0
        return PageError(msgid, {WAIT: math.ceil(float(wait))})
    return PageError(msgid)


REASONS: dict[str, str] = {
    "lost": N_("I lost my phone"),
    "stolen": N_("My phone was stolen"),
    "damaged": N_("My phone or SIM is broken"),
    "device_change": N_("I have a new phone"),
    "profile_deleted": N_("I deleted my eSIM"),
}

METHOD_LABELS: dict[str, str] = {
    "email_otp": N_("Code from our e-mail"),
    "pin": N_("Your PIN"),
    "password": N_("Your password"),
    "totp": N_("Code from your authenticator app"),
}
