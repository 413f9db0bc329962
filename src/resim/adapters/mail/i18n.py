"""Jinja support for the mail templates' per-language environments: a direct
new-style gettext (:func:`install_direct_gettext`) and compiled code shared
between the environments (:class:`SharedCode`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jinja2 import BytecodeCache, Environment, pass_eval_context
from jinja2.bccache import Bucket
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


class SharedCode(BytecodeCache):
    """Compiled template code in memory, shared by environments built alike.

    The per-language environments differ only in their gettext globals, which
    templates look up when they render, so a template's compiled code is the
    same in each: the worker compiles each template once instead of once per
    language (``preload_templates``: 48 templates x 8 languages). Jinja checks
    the source checksum on load. Share one instance only between environments
    with the same options and extensions.
    """

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()
