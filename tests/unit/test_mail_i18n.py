"""install_direct_gettext: the i18n extension's new-style semantics, one call per string."""

from __future__ import annotations

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
