"""Languages of the web pages: which one a visitor gets, and its message catalog.

Six locales (:data:`LOCALES`). A page's language is, first match wins:

1. ``?lang=`` in the URL (the language switcher; the page also sets the cookie),
2. the ``lang`` cookie (set by the switcher, one year),
3. the browser's ``Accept-Language`` header, by quality,
4. English.

Catalogs are gettext ``.po`` files, one per gettext *domain* and language, in
``resim/locale/<lang>/LC_MESSAGES/<domain>.po``: the portal's domain is
``portal``, the agent console's ``console`` (mail keeps ``messages``). As for
mail (:mod:`resim.locale`), the ``.po`` is parsed with Babel and compiled to
``.mo`` in memory on first use: no build step, and the package data already
ships ``locale/*/LC_MESSAGES/*.po``. English is the msgids themselves.
"""

from __future__ import annotations

import functools
import io
from gettext import NullTranslations
from importlib import resources

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from resim.locale import normalize_language

LOCALES = ("en", "zh_Hans", "da", "nb", "it", "fr")
SOURCE_LOCALE = "en"
LANG_COOKIE = "lang"

# Each language named in itself, for the switcher (never translated).
NATIVE_NAMES = {
    "en": "English",
    "zh_Hans": "简体中文",
    "da": "Dansk",
    "nb": "Norsk bokmål",
    "it": "Italiano",
    "fr": "Français",
}


def html_lang(locale: str) -> str:
    """The BCP 47 tag for ``<html lang>``: ``zh_Hans`` -> ``zh-Hans``."""
    return locale.replace("_", "-")


def _known(tag: str | None) -> str | None:
    """The locale for an explicit choice (query or cookie), or None if not ours."""
    if not tag:
        return None
    tag = tag.strip()[:35]
    if tag in LOCALES:
        return tag
    lang = normalize_language(tag)
    if lang == SOURCE_LOCALE and not tag.lower().startswith("en"):
        return None
    return lang


def parse_accept_language(header: str | None) -> list[str]:
    """Language tags of an ``Accept-Language`` header, best first (q=0 dropped)."""
    if not header:
        return []
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        if tag and tag != "*" and quality > 0:
            ranked.append((-quality, index, tag))
    return [tag for _, _, tag in sorted(ranked)]


def choose_locale(
    *, query: str | None = None, cookie: str | None = None, accept_language: str | None = None
) -> str:
    """The page language (see the module docstring for the order)."""
    for explicit in (query, cookie):
        found = _known(explicit)
        if found is not None:
            return found
    for tag in parse_accept_language(accept_language):
        found = _known(tag)
        if found is not None:
            return found
    return SOURCE_LOCALE


def catalog_path(domain: str, locale: str) -> resources.abc.Traversable:
    return resources.files("resim.locale") / locale / "LC_MESSAGES" / f"{domain}.po"


def load_catalog(domain: str, locale: str) -> Catalog:
    """The parsed ``.po`` catalog (not cached; for tools and tests)."""
    if locale not in LOCALES or locale == SOURCE_LOCALE:
        raise LookupError(f"no {domain!r} catalog for locale {locale!r}")
    with catalog_path(domain, locale).open("rb") as handle:
        return read_po(handle, locale=locale, domain=domain)


@functools.lru_cache(maxsize=32)
def translations(domain: str, locale: str) -> NullTranslations:
    """gettext translations of ``domain`` in ``locale`` (fuzzy entries left out).

    Cached for the life of the process: the catalogs are package data.
    """
    if locale == SOURCE_LOCALE:
        return NullTranslations()
    buffer = io.BytesIO()
    write_mo(buffer, load_catalog(domain, locale), use_fuzzy=False)
    buffer.seek(0)
    return Translations(fp=buffer, domain=domain)
