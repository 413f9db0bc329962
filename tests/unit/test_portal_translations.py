"""Every portal message is translated in all six languages, with the same placeholders.

Messages are extracted with Babel's extractors (Jinja2 for the templates, Python
for ``N_()`` in the portal's code), the way ``pybabel extract`` does, and
compared with each ``portal.po`` catalog: a missing, empty or fuzzy entry, or
a placeholder that differs, fails.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest
from babel.messages.extract import extract, extract_python
from jinja2.ext import babel_extract

from resim.entrypoints.web.i18n import LOCALES, SOURCE_LOCALE, load_catalog, translations

WEB = Path(str(resources.files("resim.entrypoints.web")))
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
PLACEHOLDER = re.compile(r"%\((\w+)\)s")
PYTHON_SOURCES = ("portal_text.py",)


def portal_messages() -> set[str]:
    found: set[str] = set()
    templates = [
        WEB / "templates" / "base.html.j2",
        WEB / "templates" / "_countdown.html.j2",
        *sorted((WEB / "templates/portal").glob("*")),
    ]
    for path in templates:
        with path.open("rb") as handle:
            for _line, message, _c, _ctx in extract(
                babel_extract, handle, keywords=KEYWORDS, options={"extensions": "jinja2.ext.i18n"}
            ):
                if isinstance(message, str):
                    found.add(message)
    for name in PYTHON_SOURCES:
        with (WEB / name).open("rb") as handle:
            for _line, message, _c, _ctx in extract(extract_python, handle, keywords=KEYWORDS):
                if isinstance(message, str):
                    found.add(message)
    return found


MESSAGES = portal_messages()
TRANSLATED = [lang for lang in LOCALES if lang != SOURCE_LOCALE]


def test_the_extractor_finds_the_portal_messages() -> None:
    assert "Get a new SIM or eSIM" in MESSAGES  # a template
    assert "Choose why you need a new SIM." in MESSAGES  # N_() in Python
    assert len(MESSAGES) > 80


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_message_has_a_translation_with_the_same_placeholders(lang: str) -> None:
    catalog = load_catalog("portal", lang)
    problems = []
    for msgid in sorted(MESSAGES):
        entry = catalog.get(msgid)
        if entry is None or not entry.string or entry.fuzzy:
            problems.append(f"missing: {msgid!r}")
            continue
        assert isinstance(entry.string, str)
        if set(PLACEHOLDER.findall(entry.string)) != set(PLACEHOLDER.findall(msgid)):
            problems.append(f"placeholders differ: {msgid!r}")
    assert problems == [], f"{lang}: " + "\n".join(problems)


@pytest.mark.parametrize("lang", TRANSLATED)
def test_translations_are_not_english_copies(lang: str) -> None:
    catalog = load_catalog("portal", lang)
    copies = [m.id for m in catalog if m.id and m.string == m.id and len(str(m.id).split()) > 2]
    assert copies == [], f"{lang}: untranslated copies {copies}"
    assert translations("portal", lang).gettext("Continue") != "Continue"


def portal_plurals() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    templates = [
        WEB / "templates" / "base.html.j2",
        WEB / "templates" / "_countdown.html.j2",
        *sorted((WEB / "templates/portal").glob("*")),
    ]
    for path in templates:
        with path.open("rb") as handle:
            for _line, message, _c, _ctx in extract(
                babel_extract, handle, keywords=KEYWORDS, options={"extensions": "jinja2.ext.i18n"}
            ):
                if not isinstance(message, str):
                    found.add((message[0], message[1]))
    return found


PLURALS = portal_plurals()


def test_the_extractor_finds_the_plural_messages() -> None:
    assert ("You have %(num)s attempt left.", "You have %(num)s attempts left.") in PLURALS


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_plural_message_has_all_its_forms(lang: str) -> None:
    catalog = load_catalog("portal", lang)
    problems = []
    for singular, plural in sorted(PLURALS):
        entry = catalog.get(singular)
        forms = entry.string if entry is not None else None
        if not isinstance(forms, tuple) or len(forms) != catalog.num_plurals or not all(forms):
            problems.append(f"missing or incomplete: {singular!r}")
            continue
        if any(set(PLACEHOLDER.findall(f)) != set(PLACEHOLDER.findall(plural)) for f in forms):
            problems.append(f"placeholders differ: {singular!r}")
    assert problems == [], f"{lang}: " + "\n".join(problems)


@pytest.mark.parametrize(
    ("lang", "n", "text"),
    [
        ("it", 1, "Ti resta 1 tentativo."),
        ("it", 3, "Ti restano 3 tentativi."),
        ("fr", 0, "Il vous reste 0 tentative."),
        ("fr", 2, "Il vous reste 2 tentatives."),
        ("da", 1, "Du har 1 forsøg tilbage."),
    ],
)
def test_the_attempts_left_use_the_languages_plural_forms(lang: str, n: int, text: str) -> None:
    got = translations("portal", lang).ngettext(
        "You have %(num)s attempt left.", "You have %(num)s attempts left.", n
    ) % {"num": n}
    assert got == text
