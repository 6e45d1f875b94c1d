"""inspect.xmltext escapes as xml.sax.saxutils does (dfxml and diff use it instead)."""

from __future__ import annotations

import random
from xml.sax.saxutils import escape, quoteattr

from vexfs_tools.inspect import xmltext


def test_escape_and_quoteattr_as_saxutils():
    rng = random.Random(13)
    samples = ["", "plain", "a&b<c>d", "both ' and \"", "only \"", "only '", "tab\tline\ncr\r"]
    samples += ["".join(rng.choice("ab&<>\"'\n\r\t ;#é") for _ in range(rng.randint(0, 16))) for _ in range(3000)]
    for text in samples:
        assert xmltext.escape(text) == escape(text)
        assert xmltext.quoteattr(text) == quoteattr(text)
