"""QR code images for activation codes, drawn with segno (no Pillow needed).

Always a full QR code (never Micro QR, which phone cameras do not read), error
correction M or better: segno raises the level to Q or H when that fits in the
same symbol version, so the code gets sturdier for free. segno picks the most
compact encoding mode itself; an ``LPA:1$...`` payload in upper case stays in
alphanumeric mode (digits, A-Z, space and ``$%*+-./:``), a lower-case host name
forces byte mode and a larger symbol.

The payload is a secret (SEC-10): it is drawn, never written into the file as
text (no title, description or metadata).
"""

from __future__ import annotations

import io

import segno

from resim.errors import InvalidInput

MIN_ERROR_LEVEL = "m"
BORDER = 4  # the quiet zone the QR standard requires, in modules
MAX_SCALE = 40


def qr_png(payload: str, *, scale: int = 6) -> bytes:
    """A PNG (1-bit greyscale) of the QR code; each module is ``scale`` pixels wide."""
    return _render(payload, kind="png", scale=scale)


def qr_svg(payload: str, *, scale: int = 6) -> bytes:
    """An SVG document (UTF-8, with XML declaration) of the QR code."""
    return _render(payload, kind="svg", scale=scale)


def make_qr(payload: str) -> segno.QRCode:
    """The symbol itself, for callers that need its version or module matrix."""
    if not payload:
        raise InvalidInput("QR payload is empty")
    try:
        return segno.make_qr(payload, error=MIN_ERROR_LEVEL, boost_error=True)
    except segno.DataOverflowError:
        raise InvalidInput("QR payload is too long for a QR code") from None


def _render(payload: str, *, kind: str, scale: int) -> bytes:
    if not 1 <= scale <= MAX_SCALE:
        raise InvalidInput(f"QR scale must be between 1 and {MAX_SCALE}")
    buffer = io.BytesIO()
    make_qr(payload).save(buffer, kind=kind, scale=scale, border=BORDER)
    return buffer.getvalue()
