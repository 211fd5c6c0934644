"""Text to words: lower-case tokens that remember where they stood, so leftovers can be shown as typed."""

from __future__ import annotations

import re
from dataclasses import dataclass

# The longest question or paste looked at, in words: what follows is reported as not read.
MAX_WORDS = 400

GUID_TEXT = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_TOKEN = re.compile(
    r"""
    (?P<guid>[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12})
  | (?P<isodate>\d{4}-\d{2}-\d{2})
  | (?P<uri>[A-Za-z][A-Za-z0-9+.-]*://[^\s,;()<>"']+)
  | (?P<word>[^\W_]+(?:[._:'\u2019-][^\W_]+)*)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    """One word as compared (``text``: lower-case, possessive dropped) and where it stood in the input."""

    text: str
    start: int
    end: int
    kind: str  # guid, isodate, uri or word


def tokenise(text: str) -> list[Token]:
    tokens: list[Token] = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "word"
        word = match.group().lower().replace("\u2019", "'")
        end = match.end()
        if kind == "uri":
            word = word.rstrip(".")
            end = match.start() + len(word)
        if kind == "word" and word.endswith("'s"):
            word = word[:-2]
        elif kind == "word" and word.endswith("'"):
            word = word[:-1]
        tokens.append(Token(word, match.start(), end, kind))
        if len(tokens) >= MAX_WORDS:
            break
    return tokens
