"""Showing names from an image that may hold any bytes: printable text stays as it is,
everything else (control characters, invalid UTF-8, backslash) is escaped, so one name is
always one line and two different names never show alike."""

from __future__ import annotations


def display(name: bytes) -> str:
    """`name` as a printable str: control characters, bytes that are not UTF-8 and C1
    controls as \\xNN, a backslash doubled."""
    text = name.decode("utf-8", "surrogateescape")
    if text.isprintable() and "\\" not in text:
        return text
    out = []
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch == "\\":
            out.append("\\\\")
        elif not ch.isprintable() and ch != " ":
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)

