"""Symbologies by name, and the check digits this project verifies itself.

The decoders already verify what the symbology carries (Code 128's mod-103 character, Reed-Solomon in
DataMatrix and QR); EAN/UPC check digits are verified again here, and Code 39's optional mod-43 character
when an institution's rule says its labels carry one. A value that fails is dropped, never reported.
"""

from __future__ import annotations

__all__ = ["CHECKED_BY_DECODER", "LINEAR", "code39_mod43_ok", "gtin_check_ok", "strip_codabar"]

#: Our names, lower-case, as they appear in results and rules.
LINEAR = frozenset({"code128", "code39", "code93", "codabar", "ean13", "ean8", "upca", "upce", "itf", "databar"})
#: Symbologies whose decoders cannot return a value with a wrong character undetected.
CHECKED_BY_DECODER = frozenset({"code128", "code93", "datamatrix", "qrcode", "microqrcode", "aztec", "pdf417"})

_CODE39_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-. $/+%"


def gtin_check_ok(digits: str) -> bool:
    """The GS1 mod-10 check of EAN-13, EAN-8, UPC-A (and UPC-E expanded to 12 digits)."""
    if not digits.isdigit() or len(digits) not in (8, 12, 13, 14):
        return False
    body, check = digits[:-1], int(digits[-1])
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == check


def code39_mod43_ok(text: str) -> bool:
    """Whether the last character of ``text`` is the Code 39 mod-43 check character of the rest."""
    if len(text) < 2 or any(c not in _CODE39_CHARS for c in text):
        return False
    return _CODE39_CHARS[sum(_CODE39_CHARS.index(c) for c in text[:-1]) % 43] == text[-1]


def strip_codabar(text: str) -> str:
    """Codabar's start and stop characters (A-D, or T/N/*/E in older notation) are framing, not data."""
    if len(text) >= 2 and text[0] in "ABCDTN*E" and text[-1] in "ABCDTN*E":
        return text[1:-1]
    return text
