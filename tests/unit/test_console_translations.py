"""The console's catalogs (gettext domain "console") are complete in all six languages.

The messages are extracted with Babel from the console's templates, the shared
base template and the console's Python (``N_``/``_`` markers), as a translator's
tool would; every one must have a non-empty translation in each catalog, with
the same ``%(name)s`` placeholders, and no catalog may keep a stale message.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir

import resim.entrypoints.web as web
from resim.entrypoints.web.i18n import LOCALES, SOURCE_LOCALE, load_catalog, translations

WEB = Path(web.__file__).parent
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def console_messages() -> set[str]:
    found = extract_from_dir(
        str(WEB),
        [
            ("templates/console/**.j2", "jinja2"),
            ("templates/base.html.j2", "jinja2"),
            ("templates/_countdown.html.j2", "jinja2"),
            ("console/**.py", "python"),
        ],
        options_map={"templates/**.j2": {"extensions": "jinja2.ext.i18n"}},
    )
    return {message for _file, _line, message, _comments, _context in found}


def test_the_extractor_finds_the_console_messages() -> None:
    messages = console_messages()
    assert "Staff sign-in" in messages  # a template
    assert "You cannot approve or reject a request you created yourself." in messages  # Python
    assert len(messages) > 100


@pytest.mark.parametrize("locale", [loc for loc in LOCALES if loc != SOURCE_LOCALE])
def test_every_message_is_translated(locale: str) -> None:
    catalog = load_catalog("console", locale)
    have = {m.id: m.string for m in catalog if m.id}
    wanted = console_messages()
    missing = sorted(m for m in wanted if not have.get(m))
    assert missing == [], f"{locale}: untranslated {missing}"
    stale = sorted(set(have) - wanted)
    assert stale == [], f"{locale}: messages no page uses {stale}"
    for message in wanted:
        if isinstance(message, tuple):  # ngettext: every plural form, same placeholders
            forms = have[message]
            assert isinstance(forms, tuple) and len(forms) == catalog.num_plurals, message
            assert all(
                set(PLACEHOLDER.findall(f)) == set(PLACEHOLDER.findall(message[1])) for f in forms
            ), (locale, message)
            continue
        assert set(PLACEHOLDER.findall(message)) == set(PLACEHOLDER.findall(str(have[message]))), (
            locale,
            message,
        )
    assert not any(m.fuzzy for m in catalog if m.id)


def test_a_translation_is_used() -> None:
    assert translations("console", "da").gettext("Sign out") == "Log ud"
    assert translations("console", "zh_Hans").gettext("Review queue") == "审核队列"
