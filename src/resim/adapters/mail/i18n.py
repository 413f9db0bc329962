"""Template-side gettext for the mail templates (see :func:`install_direct_gettext`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jinja2 import Environment, pass_eval_context
from jinja2.nodes import EvalContext
from markupsafe import Markup


def install_direct_gettext(
    env: Environment, gettext: Callable[[str], str], ngettext: Callable[[str, str, int], str]
) -> None:
    """Replace the i18n extension's ``_``, ``gettext`` and ``ngettext`` with
    callables of the same new-style semantics that make one template call each.

    The extension's ``_`` is an alias that resolves ``gettext`` from the context
    and calls it through ``Context.call``, which calls the catalog through
    ``Context.call`` again: three dispatches (each checking the callee for
    ``pass_*`` markers) per translated string, about a third of the CPU of
    rendering a mail. Here: translate, mark safe when the template
    autoescapes (so the variables are escaped, not the translation), and
    always format with ``%`` (``jinja2.ext._make_new_gettext``). Templates
    never rebind ``gettext``, which the alias would have honoured.
    """

    @pass_eval_context
    def direct_gettext(eval_ctx: EvalContext, string: str, /, **variables: Any) -> str:
        rv = gettext(string)
        return (Markup(rv) if eval_ctx.autoescape else rv) % variables  # noqa: S704 (our catalog)

    @pass_eval_context
    def direct_ngettext(
        eval_ctx: EvalContext, singular: str, plural: str, num: int, /, **variables: Any
    ) -> str:
        variables.setdefault("num", num)
        rv = ngettext(singular, plural, num)
        return (Markup(rv) if eval_ctx.autoescape else rv) % variables  # noqa: S704 (our catalog)

    env.globals.update(_=direct_gettext, gettext=direct_gettext, ngettext=direct_ngettext)
