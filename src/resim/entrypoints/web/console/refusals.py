"""The console's refusals: a service error as a page status and the console's words.

Service errors become pages with the HTTP status the API would use; messages
the console knows by code are translated (:data:`MESSAGES`), others are a
translated "could not be done" with the code (never the service's English).
"""

from __future__ import annotations

from resim.entrypoints.web.i18n import translations
from resim.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Refused,
    ResimError,
    TooManyAttempts,
    Unauthenticated,
    VerificationFailed,
)

DOMAIN = "console"  # the console's translation catalog


def N_(message: str) -> str:
    """Mark a message for extraction; it is translated when shown."""
    return message


# Known refusals, by the services' error codes, in the console's words.
MESSAGES: dict[str, str] = {
    "LOGIN_FAILED": N_("The username, password or code is not correct."),
    "IDENTITY_CHECK_REQUIRED": N_("Check the customer's ID document for this line first."),
    "SELF_REVIEW": N_("You cannot approve or reject a request you created yourself."),
    "DUPLICATE_APPROVAL": N_(
        "You have already approved this request. A second reviewer must decide."
    ),
    "NOT_IN_REVIEW": N_("This request is not waiting for review."),
    "ICCID_INVALID": N_(
        "That ICCID is not valid: it must be 18 to 20 digits, start with 89 and end with "
        "the right check digit."
    ),
    "ICCID_UNKNOWN": N_("No SIM card has that ICCID."),
    "SIM_NOT_AVAILABLE": N_("That card cannot be used: it is not an unused card of this brand."),
    "NOT_PHYSICAL": N_("This request is for an eSIM, not a card."),
    "NOT_PICKUP": N_("This card goes to the customer by courier, not over the counter."),
    "NOT_AWAITING_HANDOVER": N_("This request is not approved and waiting for a card."),
    "COOLING_OFF": N_("The cooling-off period has not ended yet."),
    "LINE_NOT_FOUND": N_("No line has that phone number."),
    "REQUEST_NOT_FOUND": N_("No replacement request has that id."),
    "REQUEST_ALREADY_OPEN": N_("This line already has an open replacement request."),
    "LINE_LOCKED": N_("The customer turned on the SIM-change lock for this line."),
    "LINE_HAS_NO_SIM": N_(
        "This number has no SIM yet (reserved, or ported in and not activated): "
        "there is nothing to replace."
    ),
    "TOO_MANY_ATTEMPTS": N_("Too many requests or attempts. Try again later."),
    "INVALID_DOCUMENT_TYPE": N_("Choose the type of document."),
    "INVALID_LAST_DIGITS": N_("Enter exactly the last 4 digits of the document number."),
    "FILL_IN": N_("Fill in your username, password and code."),
    "CHOOSE_REASON_FORM": N_("Choose a reason and a SIM type."),
    "CHOOSE_DECISION": N_("Choose approve or reject."),
    "CSRF": N_("This form has expired. Reload the page and try again."),
    "SIGN_IN": N_("Sign in to use the console."),
    "FORBIDDEN": N_("Your role does not allow this page."),
    "FORM_TOO_LARGE": N_("The form is too large."),
    "NOT_FOUND": N_("Not found."),
    # Issue 12: the refusals an agent or reviewer can meet when acting.
    "ACCOUNT_FROZEN": N_(
        "New SIMs cannot be requested for this account: it is frozen until a fraud reviewer "
        "unfreezes it."
    ),
    "NOT_FROZEN": N_("This account is not frozen."),
    "REASON_REQUIRED": N_("Give the reason for unfreezing the account."),
    "REASON_TOO_LONG": N_("The reason is too long: at most 500 characters."),
    "SAME_REVIEWER": N_(
        "You already approved unfreezing this account. A second reviewer must approve."
    ),
    "NOT_PENDING": N_(
        "Only a request still waiting for the customer's verification can be taken over."
    ),
    "ID_CHECK_NOT_ENOUGH": N_(
        "This brand does not accept an ID-document check alone for this request."
    ),
    "NO_HANDOVER_SCREEN": N_(
        "Only an eSIM request an agent opened or took over is shown on the hand-over screen."
    ),
    "NOT_YOUR_SCREEN": N_("Only the console session that opened this request shows its eSIM."),
    "HANDOFF_BY_EMAIL": N_("This brand sends the eSIM link to the customer's e-mail."),
    "ACTIVATION_NOT_AVAILABLE": N_("The eSIM is not ready, or its code was used or withdrawn."),
    "REQUEST_CLOSED": N_("This request has already ended."),
    "ALREADY_INSTALLED": N_(
        "The new eSIM is already installed; the number is moving to it and the request "
        "cannot be cancelled."
    ),
    "SECOND_PERSON_REQUIRED": N_(
        "You opened or verified this request, so another person must do this step."
    ),
    "NOT_AWAITING_VERIFICATION": N_("This request is not waiting for verification."),
    "NOT_AWAITING_STEP_UP": N_("This request is not waiting for a stronger verification."),
    "VERIFICATION_FAILED": N_("The verification did not succeed."),
    "NO_VERIFICATION_METHOD": N_(
        "No verification method on file fits this channel; check the customer's ID document."
    ),
    "DELIVERY_MODE_NOT_OFFERED": N_("This brand does not offer that delivery."),
    "AGENT_RATE_LIMIT": N_("You opened as many requests this hour as the brand allows."),
    "SIM_CHANGE_LOCKED": N_("The customer turned on the SIM-change lock for this line."),
    "REJECT_REASON_REQUIRED": N_(
        "Give the reason for rejecting: the customer's request ends and the reason is recorded."
    ),
    "REJECT_CONFIRM": N_("Tick the box to confirm that you reject this request."),
    "QUEUE_FILTER": N_(
        "The review queue cannot show this: a brand, channel or reason in the address is "
        "not valid. Choose them again on the queue."
    ),
    # Issue 14: the ID check compares the document with the account.
    "ID_NO_MATCH": N_(
        "No match: what you read off the document does not match the account. The "
        "customer's details stay hidden. Check the document again."
    ),
    "INVALID_NAME": N_("Type the holder's name as printed on the document."),
    "INVALID_BIRTH_DATE": N_("Type the holder's birth date as printed on the document."),
    "NO_RECEIPT": N_("No card was handed over for this request, so there is no receipt."),
    # Issue 12: loss reports on the line page.
    "NOT_BLOCKED": N_("The SIM of this line is not blocked."),
    "NO_SIM": N_("This line has no SIM to block."),
    "INVALID_REASON": N_("Choose lost or stolen."),
    "DASHBOARD_QUERY": N_(
        "The dashboard cannot show this: a period, brand, channel, figure or day in the "
        "address is not valid. Choose them again on the dashboard."
    ),
}


class ConsolePageError(Exception):
    """Render an error page with ``status``; ``code`` picks a translated message."""

    def __init__(self, status: int, code: str, message: str = "") -> None:
        super().__init__(message or code)
        self.status = status
        self.code = code
        self.message = message


def _status_of(exc: ResimError) -> int:
    for kind, status in (
        (Unauthenticated, 401),
        (PermissionDenied, 403),
        (NotFound, 404),
        (TooManyAttempts, 429),
        (InvalidInput, 400),
        (VerificationFailed, 400),
        (Refused, 409),
        (Conflict, 409),
    ):
        if isinstance(exc, kind):
            return status
    return 500


def from_service(exc: ResimError) -> ConsolePageError:
    code = exc.code or ""
    if isinstance(exc, TooManyAttempts):
        code = "TOO_MANY_ATTEMPTS"
    return ConsolePageError(_status_of(exc), code, exc.message)


# A refusal the console has no words of its own for: said in the caller's language
# with its code for support, never as the service's English (issue 12).
UNKNOWN_REFUSAL = N_("This could not be done (reason code %(code)s).")


def message_of(locale: str, code: str, fallback: str) -> str:
    """The console's words for ``code`` in ``locale``; ``fallback`` (the service's
    English) is never shown: an unknown code gets :data:`UNKNOWN_REFUSAL`."""
    del fallback
    gettext = translations(DOMAIN, locale).gettext
    text = MESSAGES.get(code)
    if text:
        return gettext(text)
    return gettext(UNKNOWN_REFUSAL) % {"code": code or "-"}
