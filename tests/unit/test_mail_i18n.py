"""install_direct_gettext: the i18n extension's new-style semantics, one call per string."""

from __future__ import annotations

from typing import Any

from jinja2 import DictLoader, Environment, select_autoescape

from resim.adapters.mail.i18n import install_direct_gettext

BOTH = '{{ _("Hello %(name)s", name=who) }}|{{ ngettext("%(num)s day", "%(num)s days", n) }}'
TEMPLATES = {"t.html.j2": BOTH, "t.txt.j2": BOTH + '|{{ _("100%%") }}'}


def env() -> Environment:
    e = Environment(
        loader=DictLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        extensions=["jinja2.ext.i18n"],
    )
    catalog = {"Hello %(name)s": "Hei <b>%(name)s</b>", "100%%": "hundre %%"}
    install_direct_gettext(e, lambda s: catalog.get(s, s), lambda s, p, n: s if n == 1 else p)
    return e


def test_html_escapes_the_variables_and_keeps_the_translation_markup() -> None:
    out = env().get_template("t.html.j2").render(who="<Åse>", n=2)
    assert out == "Hei <b>&lt;Åse&gt;</b>|2 days"


def test_text_formats_without_escaping_and_always_applies_percent() -> None:
    out = env().get_template("t.txt.j2").render(who="<Åse>", n=1)
    assert out == "Hei <b><Åse></b>|1 day|hundre %"


def test_environments_sharing_code_compile_once_and_keep_their_own_language() -> None:
    from jinja2.environment import Environment as Base

    from resim.adapters.mail.i18n import SharedCode

    shared = SharedCode()
    compiled: list[str] = []

    class Counting(Base):
        def _compile(self, source: str, filename: str) -> Any:
            compiled.append(filename)
            return super()._compile(source, filename)

    def make(catalog: dict[str, str]) -> Environment:
        e = Counting(
            loader=DictLoader(TEMPLATES),
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
            extensions=["jinja2.ext.i18n"],
            bytecode_cache=shared,
        )
        install_direct_gettext(e, lambda s: catalog.get(s, s), lambda s, p, n: p)
        return e

    norsk = make({"Hello %(name)s": "Hei %(name)s"}).get_template("t.txt.j2")
    dansk = make({"Hello %(name)s": "Hej %(name)s"}).get_template("t.txt.j2")
    assert len(compiled) == 1
    assert norsk.render(who="Åse", n=2).startswith("Hei Åse|")
    assert dansk.render(who="Åse", n=2).startswith("Hej Åse|")
