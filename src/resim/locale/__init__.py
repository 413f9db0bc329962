"""Translations of customer-facing text: gettext catalogs read at run time.

Layout: ``<language>/LC_MESSAGES/messages.po`` next to this file, one per
language in :data:`LANGUAGES` except the source language (``en``), whose text
is the msgids themselves. The ``.po`` files are parsed with Babel and compiled
to ``.mo`` in memory on first use, so there is no build step; the result is
cached per language for the life of the process (the files are package data
and do not change while it runs).

To add a language: copy a catalog, translate every msgstr, add the code to
:data:`LANGUAGES`; ``tests/unit/test_translations.py`` fails until every
message the templates use has a translation with the same placeholders.
"""

from __future__ import annotations

import functools
import io
from gettext import NullTranslations
from importlib import resources

from babel import Locale, UnknownLocaleError
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

SOURCE_LANGUAGE = "en"
LANGUAGES = ("en", "da", "nb", "it", "fr", "zh_Hans")
DOMAIN = "messages"

# Language tags that map onto a catalog we have, beyond language-only matches.
_ALIASES = {
    "no": "nb",  # "Norwegian" without the written standard
    "nn": "nb",  # Nynorsk readers read Bokmal; better than English
    "zh": "zh_Hans",
}
_TRADITIONAL_CHINESE = {"Hant"}
_TRADITIONAL_TERRITORIES = {"TW", "HK", "MO"}


def normalize_language(tag: str | None) -> str:
    """The catalog language for a BCP 47 or POSIX tag; unknown tags give ``en``.

    ``da-DK`` -> ``da``, ``nb_NO`` / ``no`` -> ``nb``, ``zh-CN`` / ``zh-Hans-SG``
    -> ``zh_Hans``. Traditional Chinese (``zh-TW``, ``zh-Hant``) has no catalog
    yet and falls back to English rather than to the simplified script.
    """
    if not tag:
        return SOURCE_LANGUAGE
    cleaned = tag.strip().replace("-", "_")
    try:
        locale = Locale.parse(cleaned)
    except (UnknownLocaleError, ValueError, TypeError):
        return SOURCE_LANGUAGE
    language = locale.language
    if language == "zh" and (
        locale.script in _TRADITIONAL_CHINESE
        or (locale.script is None and locale.territory in _TRADITIONAL_TERRITORIES)
    ):
        return SOURCE_LANGUAGE
    language = _ALIASES.get(language, language)
    return language if language in LANGUAGES else SOURCE_LANGUAGE


def catalog_languages() -> tuple[str, ...]:
    """The languages that have a catalog file (all but the source language)."""
    return tuple(lang for lang in LANGUAGES if lang != SOURCE_LANGUAGE)


def load_catalog(language: str) -> Catalog:
    """The parsed ``.po`` catalog of ``language`` (not cached; for tools and tests)."""
    if language not in catalog_languages():
        raise LookupError(f"no message catalog for language {language!r}")
    path = resources.files(__name__) / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as handle:
        return read_po(handle, locale=language, domain=DOMAIN)


@functools.lru_cache(maxsize=len(LANGUAGES))
def translations(language: str) -> NullTranslations:
    """gettext translations for a language from :data:`LANGUAGES`.

    The source language gets :class:`NullTranslations` (msgids are English).
    Fuzzy entries are left out, so an unreviewed translation shows English.
    """
    if language == SOURCE_LANGUAGE:
        return NullTranslations()
    buffer = io.BytesIO()
    write_mo(buffer, load_catalog(language), use_fuzzy=False)
    buffer.seek(0)
    return Translations(fp=buffer, domain=DOMAIN)
