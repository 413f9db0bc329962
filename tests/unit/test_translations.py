"""Every message the mail templates use is translated, with the same placeholders.

Messages are extracted from the templates with Babel's extractor for Jinja2
(the same one ``pybabel extract`` uses), so a new ``_()`` in a template fails
here until every catalog has it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import babel
import pytest
from babel.messages.catalog import Message
from babel.messages.extract import extract
from babel.messages.plurals import get_plural
from jinja2.ext import babel_extract

from resim.locale import (
    LANGUAGES,
    SOURCE_LANGUAGE,
    catalog_languages,
    load_catalog,
    normalize_language,
    translations,
)

TEMPLATES = Path(str(resources.files("resim.adapters.mail") / "templates"))
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2)}
PLACEHOLDER = re.compile(r"%\((\w+)\)s")

MsgId = str | tuple[str, str]


def template_messages() -> dict[MsgId, list[str]]:
    """msgid (or singular/plural pair) -> template files that use it."""
    found: dict[MsgId, list[str]] = {}
    for path in sorted(TEMPLATES.glob("*.j2")):
        with path.open("rb") as handle:
            for _lineno, message, _comments, _context in extract(
                babel_extract, handle, keywords=KEYWORDS, options={"extensions": "jinja2.ext.i18n"}
            ):
                key = message if isinstance(message, str) else (message[0], message[1])
                found.setdefault(key, []).append(path.name)
    return found


MESSAGES = template_messages()


def catalog_entries(language: str) -> Iterator[Message]:
    for message in load_catalog(language):
        if message.id:  # skip the header entry
            yield message


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def test_the_templates_use_translatable_messages() -> None:
    assert len(MESSAGES) >= 40
    assert any(isinstance(key, tuple) for key in MESSAGES), "the OTP expiry uses ngettext"


def test_the_replacement_reason_labels_are_template_messages() -> None:
    # Reason codes are labelled in templates/reasons.j2, so the catalog checks
    # below cover them like any other message.
    from_reasons = {key for key, files in MESSAGES.items() if "reasons.j2" in files}
    assert len(from_reasons) == 5
    assert "moving to a new device" in from_reasons


def test_every_language_but_english_has_a_catalog_file() -> None:
    root = Path(str(resources.files("resim.locale")))
    on_disk = {p.parent.parent.name for p in root.glob("*/LC_MESSAGES/messages.po")}
    assert on_disk == set(LANGUAGES) - {SOURCE_LANGUAGE}
    assert set(catalog_languages()) == on_disk


@pytest.mark.parametrize("language", catalog_languages())
class TestCatalog:
    def test_every_template_message_has_a_non_empty_translation(self, language: str) -> None:
        catalog = load_catalog(language)
        problems = []
        for key, used_in in MESSAGES.items():
            message = catalog.get(key if isinstance(key, str) else key[0])
            if message is None:
                problems.append(f"missing: {key!r} (used in {used_in[0]})")
                continue
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            if message.fuzzy or not all(s and s.strip() for s in strings):
                problems.append(f"untranslated or fuzzy: {key!r}")
            if isinstance(key, tuple) and message.id != key:
                problems.append(f"plural form differs from the template: {key!r}")
        assert problems == [], f"{language}:\n" + "\n".join(problems)

    def test_plural_entries_have_one_string_per_plural_form(self, language: str) -> None:
        # The form count comes from the installed Babel (its CLDR data), not from
        # this file: when a CLDR release adds a form, this names what to change.
        catalog = load_catalog(language)
        expected = get_plural(language)
        advice = (
            f"Babel {babel.__version__} (CLDR) gives {language!r} {expected.num_plurals} plural"
            f" forms, plural={expected.plural_expr}; the catalog header says"
            f" nplurals={catalog.num_plurals}, plural={catalog.plural_expr}. Update Plural-Forms"
            f" in every {language}/LC_MESSAGES/*.po and write a real translation for each form"
            " of every plural entry."
        )
        assert catalog.num_plurals == expected.num_plurals, advice
        assert catalog.plural_expr == expected.plural_expr, advice
        for message in catalog_entries(language):
            if message.pluralizable:
                assert len(message.string) == expected.num_plurals, f"{message.id}: {advice}"
                # Each form is its own text, not a copy made to fill the slot.
                assert len(set(message.string)) == len(message.string), message.id

    def test_translations_keep_exactly_the_placeholders(self, language: str) -> None:
        for message in catalog_entries(language):
            ids = message.id if isinstance(message.id, tuple) else (message.id,)
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            wanted = set().union(*(placeholders(i) for i in ids))
            for text in strings:
                # Plural forms may leave out %(num)s ("one minute"), nothing else.
                assert placeholders(text) <= wanted, (language, message.id)
                assert wanted - placeholders(text) <= {"num"}, (language, message.id)
                # New-style gettext %-formats every string: a lone % would crash.
                assert "%" not in PLACEHOLDER.sub("", text).replace("%%", ""), message.id

    def test_translations_contain_no_markup(self, language: str) -> None:
        # With autoescape on, Jinja treats translated strings as trusted markup.
        for message in catalog_entries(language):
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            for text in strings:
                assert not set(text) & set("<>&"), (language, message.id)

    def test_no_stale_entries(self, language: str) -> None:
        used = {key if isinstance(key, str) else key[0] for key in MESSAGES}
        stale = [
            m.id
            for m in catalog_entries(language)
            if (m.id if isinstance(m.id, str) else m.id[0]) not in used
        ]
        assert stale == [], f"{language}: remove or re-use {stale}"

    def test_runtime_translations_use_the_catalog(self, language: str) -> None:
        t = translations(language)
        assert t.gettext("Hello,") != "Hello,"
        assert (
            t.ngettext(
                "The code expires in %(num)s minute and can be used once.",
                "The code expires in %(num)s minutes and can be used once.",
                5,
            )
            % {"num": 5}
            != "The code expires in 5 minutes and can be used once."
        )


def test_msgids_contain_no_markup_either() -> None:
    for key in MESSAGES:
        for text in (key,) if isinstance(key, str) else key:
            assert not set(text) & set("<>&"), text


def test_english_is_the_msgids_themselves() -> None:
    assert translations("en").gettext("Hello,") == "Hello,"


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("da", "da"),
        ("da-DK", "da"),
        ("nb_NO", "nb"),
        ("no", "nb"),
        ("nn-NO", "nb"),
        ("it-CH", "it"),
        ("fr-CA", "fr"),
        ("zh_Hans", "zh_Hans"),
        ("zh-Hans-SG", "zh_Hans"),
        ("zh-CN", "zh_Hans"),
        ("zh", "zh_Hans"),
        ("zh-TW", "en"),
        ("zh-Hant", "en"),
        ("en-GB", "en"),
        ("de", "en"),
        ("", "en"),
        (None, "en"),
        ("not a language", "en"),
        ("xx", "en"),
    ],
)
def test_language_tags_map_to_a_catalog_or_english(tag: str | None, expected: str) -> None:
    assert normalize_language(tag) == expected
