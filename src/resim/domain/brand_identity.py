"""How a brand presents itself to its customers: name, logo, colours, contact points.

Part of the brand's policy (``BrandPolicy.identity``), stored with it as JSON.
The portal shows it once the customer's number is known (before that, the
operator's neutral look); mail and SMS name the contact points wherever they
say "contact us". Every field is optional: an empty identity gives the brand's
own name, the portal's default colours and no contact points.

What is checked here, because a policy is typed in by an operator's admin and
ends up in pages and messages (SEC-10: never a way into another customer's page):

* colours are ``#rrggbb``; the brand colour is used for links on white and as
  a button's background under ``text_colour``, so both pairs must reach the
  WCAG 2.x AA contrast ratio for text (4.5:1);
* the logo is a small inline SVG without scripts, event handlers, external
  references or embedded HTML; it is served as an image with a sandboxing
  Content-Security-Policy as well;
* links are ``https://`` addresses; the phone number is digits, spaces and
  ``+ - ( )`` only;
* the after-swap note is plain text per language (``{"en": ..., "nb": ...}``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from resim.errors import InvalidInput

MAX_LOGO_BYTES = 8 * 1024
MAX_TEXT = 300
MIN_CONTRAST = 4.5
DEFAULT_COLOUR = "#0b5cad"  # the portal's own accent (resim.css)
DEFAULT_TEXT_COLOUR = "#ffffff"

_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ()-]{2,23}$")
_URL = re.compile(r"^https://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[^\s<>\"'\\]*)?$")
_LANG = re.compile(r"^[a-z]{2}(?:_[A-Z][a-z]{3})?$")
# Anything that could run code or fetch from elsewhere when the SVG is opened.
_SVG_FORBIDDEN = re.compile(
    r"<\s*(?:script|foreignObject|iframe|object|embed|image|use|a|style)\b"
    r"|\bon[a-z]+\s*="
    r"|(?:xlink:)?href\s*="
    r"|javascript:|data:|url\s*\(|<!ENTITY|<!DOCTYPE",
    re.IGNORECASE,
)


def _channel(value: str) -> float:
    c = int(value, 16) / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def luminance(colour: str) -> float:
    """Relative luminance of ``#rrggbb`` (WCAG 2.x)."""
    r, g, b = (_channel(colour[i : i + 2]) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """The WCAG contrast ratio of two ``#rrggbb`` colours (1 to 21)."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def check_svg(svg: str) -> None:
    """InvalidInput unless ``svg`` is a small, self-contained SVG image."""
    if len(svg.encode()) > MAX_LOGO_BYTES:
        raise InvalidInput(f"policy field identity.logo_svg is larger than {MAX_LOGO_BYTES} bytes")
    head = svg.lstrip()
    if not head.startswith("<svg") or not svg.rstrip().endswith("</svg>"):
        raise InvalidInput("policy field identity.logo_svg must be one <svg> element")
    if _SVG_FORBIDDEN.search(svg):
        raise InvalidInput(
            "policy field identity.logo_svg may hold only shapes and text"
            " (no scripts, event handlers, links, styles or external images)"
        )


@dataclass(frozen=True)
class BrandIdentity:
    display_name: str = ""  # what customers read; empty: the brand's name
    logo_svg: str = ""  # a small inline SVG, served by resim
    colour: str = DEFAULT_COLOUR  # links, buttons, the header's edge
    text_colour: str = DEFAULT_TEXT_COLOUR  # text on a button in ``colour``
    phone: str = ""  # customer service, as customers dial it: "+45 70 10 20 30"
    web_url: str = ""  # customer service on the web
    stores_url: str = ""  # where to find a store
    # After a completed replacement, per language: what else the customer must
    # redo, e.g. {"nb": "BankID på mobil må aktiveres på nytt."}.
    after_swap_note: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("display_name", "phone", "web_url", "stores_url"):
            value = getattr(self, name)
            if not isinstance(value, str) or len(value) > MAX_TEXT or _has_control(value):
                raise InvalidInput(f"policy field identity.{name} must be one line of text")
        for name in ("colour", "text_colour"):
            if not isinstance(getattr(self, name), str) or not _HEX.match(getattr(self, name)):
                raise InvalidInput(f"policy field identity.{name} must be a colour like #0b5cad")
        if contrast(self.colour, "#ffffff") < MIN_CONTRAST:
            raise InvalidInput(
                "policy field identity.colour is too light for text on white"
                f" (contrast below {MIN_CONTRAST}:1)"
            )
        if contrast(self.colour, self.text_colour) < MIN_CONTRAST:
            raise InvalidInput(
                "policy fields identity.colour and identity.text_colour differ too little"
                f" (contrast below {MIN_CONTRAST}:1)"
            )
        if self.phone and not _PHONE.match(self.phone):
            raise InvalidInput("policy field identity.phone must be digits, spaces and + - ( )")
        for name in ("web_url", "stores_url"):
            value = getattr(self, name)
            if value and not _URL.match(value):
                raise InvalidInput(f"policy field identity.{name} must be an https:// address")
        if not isinstance(self.logo_svg, str):
            raise InvalidInput("policy field identity.logo_svg must be text")
        if self.logo_svg:
            check_svg(self.logo_svg)
        notes = self.after_swap_note
        if not isinstance(notes, dict):
            raise InvalidInput("policy field identity.after_swap_note must map languages to text")
        for lang, text in notes.items():
            if not isinstance(lang, str) or not _LANG.match(lang):
                raise InvalidInput(f"policy field identity.after_swap_note: bad language {lang!r}")
            if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
                raise InvalidInput(
                    f"policy field identity.after_swap_note.{lang} must be 1..{MAX_TEXT} characters"
                )
            if _has_control(text):
                raise InvalidInput(
                    f"policy field identity.after_swap_note.{lang} must be one line of text"
                )

    @property
    def phone_uri(self) -> str:
        """``tel:`` address of the phone number (digits and a leading +)."""
        digits = re.sub(r"[^0-9+]", "", self.phone)
        return f"tel:{digits}" if digits else ""

    def note_in(self, language: str, fallback: str) -> str:
        """The after-swap note in ``language``, else the brand's language, else English."""
        for lang in (language, fallback, "en"):
            if lang in self.after_swap_note:
                return self.after_swap_note[lang]
        return ""

    @classmethod
    def from_value(cls, value: Any) -> BrandIdentity:
        if value is None:
            return cls()
        if isinstance(value, BrandIdentity):
            return value
        if not isinstance(value, dict):
            raise InvalidInput("policy field identity must be an object")
        known = set(cls.__dataclass_fields__)
        unknown = set(value) - known
        if unknown:
            raise InvalidInput(f"unknown policy fields: identity.{sorted(unknown)[0]}")
        return cls(**value)


def _has_control(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)
