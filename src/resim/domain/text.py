"""Rules for free text that ends up in mail headers, SMS and pages. Pure.

A name or e-mail address with a line break in it breaks the message that
carries it: the mail library refuses a header with CR or LF (header
injection), PostgreSQL refuses NUL in text, and a notice that cannot be built
dies in its job, unseen by the customer it was for. Such input is refused
where it enters.
"""

from __future__ import annotations

import unicodedata

# Cc: C0 and C1 controls (NUL, TAB, LF, CR, ESC, DEL, NEL ...);
# Zl, Zp: the Unicode line and paragraph separators (U+2028, U+2029).
_REFUSED_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})


def has_control_characters(text: str) -> bool:
    """Whether ``text`` holds a control character or a line/paragraph separator."""
    return any(unicodedata.category(ch) in _REFUSED_CATEGORIES for ch in text)
