"""A question in words to the portal's filters: what to list, filtered how, and what was not understood.

Pure: the catalogue comes in as a ``Matcher``, the day as ``today``. Reading goes left to right:
subject ids, time phrases, the words of validity and tenant status, the intents ("roles", "who"),
whole names of several words, then every other word is looked up in the catalogue. Permission
codes are read as action and resource ("approve orders" is ``orders.approve``). A word that names
nothing is returned in ``unmatched``, never dropped: the admin sees exactly what was understood.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from authz.search.dates import period_at
from authz.search.lexicon import (
    FILLER_WORDS,
    INTENTS,
    STOP_WORDS,
    TENANT_STATUS_WORDS,
    THESAURUS,
    THESAURUS_LONGEST,
    VALIDITY_PHRASES,
    VALIDITY_WORDS,
)
from authz.search.matching import AUDIENCE, KIND_ORDER, PERMISSION, ROLE, SUBJECT, TENANT, Hit, Matcher
from authz.search.tokens import tokenise

TARGETS = ("grants", "roles", "tenants", "principals")
# The filters each list can apply; anything else asked makes it a question about grants.
TARGET_FILTERS = {
    "grants": {
        "tenant",
        "role",
        "permission",
        "audience",
        "subject",
        "validity",
        "within_days",
        "tenant_status",
    },
    "roles": {"tenant", "role", "permission", "audience"},
    "tenants": {"tenant", "tenant_status"},
    "principals": {"subject"},
}
# More subjects than this under one word is no answer ("john" in a large directory): it is shown
# as not understood instead of filtering by a list the admin cannot check.
MAX_SUBJECTS_PER_WORD = 20
VALIDITIES = ("active", "expiring", "expired", "future")
TENANT_STATUSES = ("active", "suspended")


@dataclass(frozen=True)
class Interpretation:
    target: str
    filters: dict[str, Any]
    unmatched: list[str]

    def as_json(self) -> dict[str, Any]:
        return {"target": self.target, "filters": self.filters, "unmatched": self.unmatched}


@dataclass
class _Reading:
    """What has been read so far, by word position."""

    votes: list[tuple[int, str]] = field(default_factory=list)
    found: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))  # kind → value → pos
    validity: tuple[int, str] | None = None
    status: str | None = None
    period: tuple[int, bool] | None = None
    content: list[int] = field(default_factory=list)
    unmatched: set[int] = field(default_factory=set)
    # Words naming permissions or audiences, read once the whole question is known.
    pending: list[tuple[int, list[Hit]]] = field(default_factory=list)
    # Audiences that only narrowed the actions asked ("read the billing api").
    absorbed: set[str] = field(default_factory=set)

    def add(self, kind: str, value: str, position: int) -> None:
        self.found[kind].setdefault(value, position)


def interpret(
    question: str,
    matcher: Matcher,
    *,
    today: date,
    semantic: bool = True,
    targets: tuple[str, ...] = TARGETS,
) -> Interpretation:
    """The interpretation of ``question`` over ``matcher``'s catalogue; ``targets`` the lists allowed."""
    tokens = tokenise(question)
    words = [token.text for token in tokens]
    reading = _Reading()
    _read_phrases(words, [t.kind for t in tokens], matcher, reading, today)
    _read_content(words, matcher, reading, semantic)
    target, filters = _assemble(words, reading, targets)
    unmatched = [question[tokens[i].start : tokens[i].end] for i in sorted(reading.unmatched)]
    return Interpretation(target, filters, unmatched)


def _read_phrases(
    words: list[str], kinds: list[str], matcher: Matcher, reading: _Reading, today: date
) -> None:
    i = 0
    while i < len(words):
        word, kind = words[i], kinds[i]
        if kind == "guid":
            reading.add(SUBJECT, word, i)
            i += 1
            continue
        if kind == "uri" or (kind == "word" and any(c in word for c in ".:")):
            exact = [kind for kind in (AUDIENCE, PERMISSION) if matcher.named(kind, word)]
            for found_kind in exact:
                reading.add(found_kind, word, i)
            if not exact:
                reading.unmatched.add(i)
            i += 1
            continue
        period = period_at(words, i, today)
        if period is not None:
            reading.period = (period.days, period.past)
            i += period.length
            continue
        length = _phrase(words, i, matcher, reading)
        if length:
            i += length
            continue
        if word in INTENTS:
            reading.votes.append((i, INTENTS[word]))
        elif word in VALIDITY_WORDS:
            reading.validity = reading.validity or (i, VALIDITY_WORDS[word])
        elif word in TENANT_STATUS_WORDS:
            reading.status = reading.status or TENANT_STATUS_WORDS[word]
        elif word not in STOP_WORDS or (word, *words[i + 1 : i + 2]) in THESAURUS:
            reading.content.append(i)
        i += 1


def _phrase(words: list[str], i: int, matcher: Matcher, reading: _Reading) -> int:
    """Reads the longest phrase of two words or more at ``i``: a whole name, validity, or a synonym."""
    best = 0
    named = matcher.phrase_at(words, i)
    if named is not None:
        best = named[1]
    for table_phrase, meaning in VALIDITY_PHRASES.items():
        if len(table_phrase) > best and tuple(words[i : i + len(table_phrase)]) == table_phrase:
            best = len(table_phrase)
            reading.validity = reading.validity or (i, meaning)
            return best
    for length in range(min(THESAURUS_LONGEST, len(words) - i), 1, -1):
        synonyms = THESAURUS.get(tuple(words[i : i + length]))
        if synonyms and length > best:
            hits = matcher.expand(synonyms)
            if hits:
                _take(words, i, hits, matcher, reading)
            else:
                reading.unmatched.add(i)
            return length
    if named is not None:
        items, length = named
        for n in items:
            item = matcher.items[n]
            reading.add(item.kind, item.value, i)
    return best


def _read_content(words: list[str], matcher: Matcher, reading: _Reading, semantic: bool) -> None:
    for i in reading.content:
        hits = matcher.lookup(words[i], semantic=semantic)
        if not hits and words[i] in FILLER_WORDS:
            continue
        if not hits:
            reading.unmatched.add(i)
            continue
        _take(words, i, hits, matcher, reading)
    _resolve_permissions(reading, matcher)


def _take(words: list[str], i: int, hits: list[Hit], matcher: Matcher, reading: _Reading) -> None:
    """Keeps the kind the word names best; permissions wait for the whole question (action and resource)."""
    best: dict[str, float] = {}
    for hit in hits:
        kind = matcher.items[hit.item].kind
        best[kind] = max(best.get(kind, 0.0), hit.score)
    top = max(best.values())
    kind = next(k for k in KIND_ORDER if best.get(k, -1.0) >= top - 1e-9)
    chosen = [h for h in hits if matcher.items[h.item].kind == kind and h.score >= best[kind] - 1e-9]
    if kind in (PERMISSION, AUDIENCE):
        reading.pending.append((i, [h for h in hits if matcher.items[h.item].kind in (PERMISSION, AUDIENCE)]))
        return
    values = list(dict.fromkeys(matcher.items[h.item].value for h in chosen))
    if kind == SUBJECT and len(values) > MAX_SUBJECTS_PER_WORD:
        reading.unmatched.add(i)
        return
    for value in values:
        reading.add(kind, value, i)


def _resolve_permissions(reading: _Reading, matcher: Matcher) -> None:
    """Actions narrowed by what they act on: "approve orders" is the permissions that are both.

    A word names an action (a code's last part), a resource (its other parts) or, failing both, words
    of a permission's description ("stock"), which narrow like a resource. A word that narrows the
    actions to nothing names an audience if it can, or is shown as not understood.
    """
    items = matcher.items
    actions: dict[int, set[int]] = {}
    narrowing: dict[int, set[int]] = {}
    audiences: dict[int, set[int]] = {}
    for i, hits in reading.pending:
        if any(hit.part in ("action", "resource") for hit in hits):
            hits = [hit for hit in hits if hit.part != "description"]
        for hit in hits:
            if items[hit.item].kind == AUDIENCE:
                audiences.setdefault(i, set()).add(hit.item)
            elif hit.part == "action":
                actions.setdefault(i, set()).add(hit.item)
            else:
                narrowing.setdefault(i, set()).add(hit.item)
        if i in actions:  # a word that is an action somewhere is read as the action
            narrowing.pop(i, None)
    chosen: set[int] = set().union(*actions.values()) if actions else set()
    named = {
        matcher.items[n].value
        for i, found in audiences.items()
        if i not in actions and i not in narrowing
        for n in found
    }
    chosen = _through_audiences(chosen, reading, matcher, named)
    for i, found in narrowing.items():
        if not actions and i in audiences:
            continue
        if not chosen and not actions:
            chosen = set(found)
        elif chosen & found:
            chosen &= found
        else:
            narrowing[i] = set()  # combines with nothing asked
    for i, found in [*actions.items(), *narrowing.items()]:
        if found & chosen:
            for n in sorted(found & chosen):
                reading.add(PERMISSION, items[n].value, i)
        elif i in audiences:
            for n in sorted(audiences[i]):
                reading.add(AUDIENCE, items[n].value, i)
        else:
            reading.unmatched.add(i)
    for i, found in audiences.items():
        if i not in narrowing and i not in actions:
            for n in sorted(found):
                if items[n].value not in reading.absorbed:
                    reading.add(AUDIENCE, items[n].value, i)


def _through_audiences(chosen: set[int], reading: _Reading, matcher: Matcher, named: set[str]) -> set[int]:
    """Actions asked of a named audience ("read the billing api") are its permissions of those actions.

    The audience then says nothing more and is not kept as a filter of its own; one whose
    permissions have none of the actions stays a filter.
    """
    if not chosen:
        return chosen
    items = matcher.items
    for value in [*reading.found.get(AUDIENCE, {}), *sorted(named)]:
        codes = {code for audience in matcher.named(AUDIENCE, value) for code in audience.detail}
        narrowed = {n for n in chosen if items[n].value in codes}
        if narrowed:
            chosen = narrowed
            reading.found.get(AUDIENCE, {}).pop(value, None)
            reading.absorbed.add(value)
    return chosen


def _assemble(words: list[str], reading: _Reading, targets: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    found = reading.found
    # "tenant acme", "role viewer": a name follows the word, which qualifies it rather than asks
    # for that list, unless nothing else says what to list.
    votes = [(i, target) for i, target in reading.votes if not _qualifies(i, target, found)] or reading.votes
    target = votes[0][1] if votes else "grants"
    validity = reading.validity[1] if reading.validity else None
    status = reading.status
    if validity == "active" and reading.validity and _before_tenants(words, reading.validity[0]):
        validity, status = None, status or "active"
    if target == "tenants" and validity == "active" and status is None:
        validity, status = None, "active"
    within = None
    if reading.period is not None:
        within, past = reading.period
        if validity is None:  # "grants next week": what ends then (or ended, looking back)
            validity = "expired" if past else "expiring"
    filters: dict[str, Any] = {}
    for kind in (TENANT, ROLE, PERMISSION, AUDIENCE, SUBJECT):
        positions = found.get(kind, {})
        if positions:
            filters[kind] = sorted(positions, key=lambda value: (positions[value], value))
    if validity:
        filters["validity"] = validity
    if within is not None and validity in ("expiring", "expired", "future"):
        filters["within_days"] = within
    if status:
        filters["tenant_status"] = status
    return target_settle(target, filters, targets), filters


def target_settle(target: str, filters: dict[str, Any], targets: tuple[str, ...] = TARGETS) -> str:
    """``target`` if its list can apply every filter and the user may see it; else the grants."""
    if target not in targets or not set(filters) <= TARGET_FILTERS.get(target, set()):
        return "grants"
    return target


def _qualifies(i: int, target: str, found: dict[str, dict[str, int]]) -> bool:
    kind = {"tenants": TENANT, "roles": ROLE}.get(target)
    return kind is not None and any(position == i + 1 for position in found.get(kind, {}).values())


def _before_tenants(words: list[str], i: int) -> bool:
    return i + 1 < len(words) and INTENTS.get(words[i + 1]) == "tenants"
