"""The language a request's messages go out in: the portal's, once the customer uses it.

A request opened on the portal stores the page's language (``open_spec``); a
customer who then goes on in another language (the verify page, a new code)
gets the mails that follow in that one: the code mail they asked for, and the
notices their confirmation sets going. Staff and API callers never set it; a
request without one uses the subscriber's language on file, then the brand's
(:func:`resim.services.notifications.notify.message_language`).
"""

from __future__ import annotations

from resim.domain.workflow import TERMINAL_STATES
from resim.errors import ResimError
from resim.locale import LANGUAGES, normalize_language
from resim.services import repo
from resim.services.context import ServiceContext


def remember_language(ctx: ServiceContext, request_id: str, language: str) -> bool:
    """Store ``language`` on an open request; True if it changed (audited).

    Unknown requests, closed ones and unknown languages change nothing: the
    caller is an anonymous page, and this is a preference, never a reason to fail.
    """
    lang = normalize_language(language)
    if lang not in LANGUAGES:
        return False
    try:
        with ctx.uow() as uow:
            request = repo.get_request(uow, request_id, lock=True)
            if request.state in TERMINAL_STATES or request.language == lang:
                return False
            request.set_language(lang, actor="customer", at=ctx.now())
            uow.commit()
            return True
    except ResimError:
        return False
