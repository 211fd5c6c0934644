"""Words to catalogue items: tenants, roles, permissions, audiences and labelled subjects.

Pure: the catalogue comes in as plain items, the semantic neighbour finder (``authz.search.model``)
as an optional object. A word finds items through, in order of trust: its own letters (the same
word or stem), the thesaurus, a close spelling (typing slips), and, with the model, a close
meaning. Each hit says how it was found and how sure it is, so the interpreter can prefer the
surest and the page can say what came from where.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from authz.search.lexicon import GENERIC_NAME_WORDS, THESAURUS, name_words, stem

# One-word synonyms by stem, so "finances" finds what "finance" does.
_SYNONYMS = {stem(phrase[0]): words for phrase, words in THESAURUS.items() if len(phrase) == 1}

TENANT, ROLE, PERMISSION, AUDIENCE, SUBJECT = "tenant", "role", "permission", "audience", "subject"
# When one word names things of several kinds equally well, the first kind here wins.
KIND_ORDER = (TENANT, ROLE, PERMISSION, AUDIENCE, SUBJECT)

EXACT, STEM, THESAURUS_HIT, FUZZY, SEMANTIC = "exact", "stem", "thesaurus", "fuzzy", "semantic"
SCORES = {EXACT: 1.0, STEM: 0.95, THESAURUS_HIT: 0.9}
FUZZY_MIN_RATIO = 0.8
FUZZY_MIN_LENGTH = 4


@dataclass(frozen=True)
class Item:
    """A thing of the catalogue: ``value`` is what a filter holds (slug, code, audience id, subject id)."""

    kind: str
    value: str
    names: tuple[str, ...]
    # Roles: the permission codes they give. Subjects: (provider, subject type). Audiences: codes.
    detail: tuple[str, ...] = ()
    # A tenant's own role: that tenant's slug.
    owner: str = ""


class Hit(NamedTuple):
    item: int  # index into Matcher.items
    part: str  # slug, name, action, resource, description, label
    how: str
    score: float
    surface: str = ""  # the catalogue word it matched


class Neighbours(Protocol):
    """Finds the catalogue words closest in meaning to a word (``authz.search.model``)."""

    def nearest(self, word: str) -> list[tuple[str, float]]: ...


class _Entry(NamedTuple):
    item: int
    part: str
    surface: str


@dataclass
class Matcher:
    """An index of a catalogue's words, built once per catalogue version and reused by every question."""

    items: list[Item]
    neighbours: Neighbours | None = None
    # Words of names, slugs and codes; words of descriptions apart (many, and weaker evidence).
    by_stem: dict[str, list[_Entry]] = field(default_factory=lambda: defaultdict(list))
    described: dict[str, list[_Entry]] = field(default_factory=lambda: defaultdict(list))
    phrases: dict[tuple[str, ...], list[int]] = field(default_factory=lambda: defaultdict(list))
    # Trigrams of the words a typing slip may aim at, by word length.
    trigrams: dict[tuple[str, int], set[str]] = field(default_factory=lambda: defaultdict(set))
    by_value: dict[tuple[str, str], list[int]] = field(default_factory=lambda: defaultdict(list))
    longest_phrase: int = 1

    @classmethod
    def build(cls, items: Iterable[Item], neighbours: Neighbours | None = None) -> Matcher:
        matcher = cls(list(items), neighbours)
        surfaces: set[str] = set()
        for index, item in enumerate(matcher.items):
            matcher.by_value[item.kind, item.value].append(index)
            heads = frozenset(stem(ws[-1]) for ws in map(name_words, item.names) if ws)
            for part, words in _parts(item):
                table = matcher.described if part == "description" else matcher.by_stem
                for word in words:
                    # One word names a role only as its head ("clerk" of order-clerk); whole
                    # names of several words are phrases.
                    if item.kind != ROLE or stem(word) in heads:
                        table[stem(word)].append(_Entry(index, part, word))
                        surfaces.add(word)
            for name in item.names[: 2 if item.kind == PERMISSION else None]:
                stems = tuple(stem(word) for word in name_words(name))
                if len(stems) >= 2:
                    matcher.phrases[stems].append(index)
                    matcher.longest_phrase = max(matcher.longest_phrase, len(stems))
        for surface in surfaces:
            if len(surface) >= FUZZY_MIN_LENGTH and surface.isalpha():
                for gram in _grams(surface):
                    matcher.trigrams[gram, len(surface)].add(surface)
        return matcher

    def named(self, kind: str, value: str) -> list[Item]:
        """The items of ``kind`` with the filter value ``value`` (several tenants' roles may share a slug)."""
        return [self.items[n] for n in self.by_value.get((kind, value), [])]

    def terms(self, kinds: Iterable[str]) -> list[str]:
        """The distinct words (letters only) naming items of ``kinds``: what the model compares words with."""
        wanted = set(kinds)
        tables = (self.by_stem, self.described)
        return sorted(
            {
                e.surface
                for table in tables
                for entries in table.values()
                for e in entries
                if self.items[e.item].kind in wanted
            }
        )

    def phrase_at(self, words: list[str], i: int) -> tuple[list[int], int] | None:
        """Items whose whole name (two words or more) is written at ``words[i:]``, longest first."""
        for length in range(min(self.longest_phrase, len(words) - i), 1, -1):
            found = self.phrases.get(tuple(stem(word) for word in words[i : i + length]))
            if found:
                return found, length
        return None

    def lookup(self, word: str, *, semantic: bool = True) -> list[Hit]:
        """The items ``word`` names, by the surest way that finds any."""
        hits = self._same(word, EXACT)
        if any(hit.part != "description" for hit in hits):
            return hits
        # Only a description's word: the thesaurus may know the action it stands for ("view" → read).
        for synonym in THESAURUS.get((word,), _SYNONYMS.get(stem(word), ())):
            hits += [
                Hit(h.item, h.part, THESAURUS_HIT, SCORES[THESAURUS_HIT], h.surface)
                for h in self._same(synonym, EXACT)
            ]
        if hits:
            return hits
        hits = self._close(word)
        if hits or not semantic or self.neighbours is None:
            return hits
        for term, similarity in self.neighbours.nearest(word):
            hits += [Hit(h.item, h.part, SEMANTIC, similarity, h.surface) for h in self._same(term, EXACT)]
        return hits

    def expand(self, synonyms: Iterable[str]) -> list[Hit]:
        """The items the thesaurus' words for a phrase ("sign off" → approve) name."""
        return [
            Hit(h.item, h.part, THESAURUS_HIT, SCORES[THESAURUS_HIT], h.surface)
            for synonym in synonyms
            for h in self._same(synonym, EXACT)
        ]

    def _same(self, word: str, how: str) -> list[Hit]:
        """Items with ``word`` (or its stem) in a name or code, else in a description."""
        word_stem = stem(word)
        entries = self.by_stem.get(word_stem) or self.described.get(word_stem, [])
        return [
            Hit(e.item, e.part, how, SCORES[how], e.surface)
            if e.surface == word
            else Hit(e.item, e.part, STEM, SCORES[STEM], e.surface)
            for e in entries
        ]

    def _close(self, word: str) -> list[Hit]:
        if len(word) < FUZZY_MIN_LENGTH or not word.isalpha():
            return []
        grams = _grams(word)
        counts: dict[str, int] = defaultdict(int)
        # Words of about the same length only: a slip changes one or two letters.
        for length in range(len(word) - 2, len(word) + 3):
            for gram in grams:
                for surface in self.trigrams.get((gram, length), ()):
                    counts[surface] += 1
        enough = max(1, len(grams) // 3)
        best: list[tuple[float, str]] = []
        for surface, shared in counts.items():
            if shared >= enough:
                compared = difflib.SequenceMatcher(None, word, surface)
                if compared.quick_ratio() >= FUZZY_MIN_RATIO and compared.ratio() >= FUZZY_MIN_RATIO:
                    best.append((compared.ratio(), surface))
        if not best:
            return []
        top = max(ratio for ratio, _ in best)
        hits: list[Hit] = []
        for ratio, surface in best:
            if ratio == top:
                hits += [Hit(h.item, h.part, FUZZY, ratio * 0.9, surface) for h in self._same(surface, EXACT)]
        return hits


def _parts(item: Item) -> list[tuple[str, list[str]]]:
    """The words of an item, by the part of it they come from."""
    if item.kind == PERMISSION:
        code = name_words(item.value)
        parts = [("action", code[-1:]), ("resource", code[:-1])]
        if len(item.names) > 1:
            parts.append(("description", _content(item.names[1])))
        return parts
    if item.kind == SUBJECT:
        # One word of a user's label finds them ("bob"); a group is found by its whole label only,
        # whose single words ("accounts", "staff") say little.
        group = item.detail[-1:] == ("group",)
        labels = [name_words(name) for name in item.names]
        return [("label", words) for words in labels if not group or len(words) == 1]
    if item.kind == AUDIENCE:
        words = [w for name in item.names for w in _content(name)]
        return [("name", list(dict.fromkeys(words)))]
    slug, *names = item.names
    return [("slug", name_words(slug)), *(("name", _content(name)) for name in names)]


def _content(text: str) -> list[str]:
    return [word for word in name_words(text) if word not in GENERIC_NAME_WORDS and len(word) > 1]


def _grams(word: str) -> set[str]:
    padded = f" {word} "
    return {padded[i : i + 3] for i in range(len(padded) - 2)}
