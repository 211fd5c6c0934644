"""Smart paste: an access request in words (an e-mail, a ticket) to the fields of a new grant.

Pure: the catalogue comes in as a ``Matcher``, the moment as ``now``. Only what the text says is
proposed: one subject (a GUID, or one labelled user or group), one tenant, the role named or the
one that gives what is asked with the least else, the period from dates and durations, and the
reason from ticket ids and approvers. Where the text is ambiguous the field stays empty and a note
says why; words it could not use are returned to be shown. Nothing is saved here or by the page:
the admin reviews the filled form and saves it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from authz.search.dates import date_at, period_at
from authz.search.interpret import interpret
from authz.search.matching import PERMISSION, ROLE, SUBJECT, Item, Matcher
from authz.search.tokens import GUID_TEXT, tokenise

_TICKET = re.compile(r"\b[A-Z][A-Z0-9]{1,9}-\d{1,9}\b|\b(?i:ticket|case|incident|request)\s*#?\s*\d{2,10}\b")
_APPROVER = re.compile(
    r"\b(?i:approved|authori[sz]ed|signed\s+off|okayed)\s+by\s+"
    r"((?:[A-Z]\.|[A-Z][\w'-]*)(?:\s+(?:[A-Z]\.|[A-Z][\w'-]*|van|de|von|der)){0,3})"
)
_FROM_WORDS = frozenset({"from", "starting", "start", "starts", "beginning", "begins", "effective", "on"})
_UNTIL_WORDS = frozenset(
    {
        "until",
        "till",
        "to",
        "through",
        "thru",
        "ending",
        "ends",
        "expires",
        "expiring",
        "expire",
        "by",
        "before",
    }
)
# Greetings and sign-offs: neither used nor worth showing as unused.
_COURTESY = frozenset(
    [
        "hi",
        "hello",
        "hey",
        "dear",
        "thanks",
        "thank",
        "cheers",
        "regards",
        "best",
        "kind",
        "many",
        "morning",
        "afternoon",
        "team",
        "folks",
        "all",
        "could",
        "would",
        "you",
        "kindly",
        "ticket",
        "tickets",
        "case",
        "request",
        "ref",
        "reference",
    ]
)
# Granting read-like permissions beyond what was asked costs less than granting changes.
_READ_ACTIONS = frozenset({"read", "view", "list", "get"})
END_OF_DAY = time(23, 59, 59)


@dataclass
class Proposal:
    """The fields proposed for a new grant; empty where the text did not say (``notes`` says why)."""

    subject_id: str = ""
    subject_type: str = ""
    provider: str = ""
    tenant: str = ""
    role: Item | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    reason: str = ""
    notes: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)


def propose(text: str, matcher: Matcher, *, now: datetime, semantic: bool = True) -> Proposal:
    proposal = Proposal()
    used: list[tuple[int, int]] = []
    _reason(text, proposal, used)
    _period(text, proposal, used, now)
    rest = _blank(text, used)
    reading = interpret(rest, matcher, today=now.date(), semantic=semantic)
    filters = reading.filters
    _subject(text, filters.get("subject", []), matcher, proposal)
    tenants = filters.get("tenant", [])
    if len(tenants) == 1:
        proposal.tenant = tenants[0]
    elif tenants:
        proposal.notes.append(f"Several tenants are named ({', '.join(tenants)}): choose one.")
    _role(filters, matcher, proposal)
    proposal.unused = [word for word in reading.unmatched if word.lower() not in _COURTESY]
    return proposal


def _reason(text: str, proposal: Proposal, used: list[tuple[int, int]]) -> None:
    parts: list[str] = []
    # A GUID's groups must not read as ticket ids.
    for match in _TICKET.finditer(GUID_TEXT.sub(lambda guid: " " * len(guid.group()), text)):
        parts.append(" ".join(match.group().split()))
        used.append(match.span())
    for match in _APPROVER.finditer(text):
        parts.append(f"approved by {match.group(1).strip()}")
        used.append(match.span())
    proposal.reason = ", ".join(dict.fromkeys(parts))
    if not parts:
        proposal.notes.append("No ticket or approver found: write the reason yourself.")


def _period(text: str, proposal: Proposal, used: list[tuple[int, int]], now: datetime) -> None:
    tokens = tokenise(text)
    words = [token.text for token in tokens]
    today = now.date()
    duration: int | None = None
    i = 0
    while i < len(words):
        word = words[i]
        lead = (
            word in _FROM_WORDS or word in _UNTIL_WORDS or (word == "as" and words[i + 1 : i + 2] == ["of"])
        )
        skip = 2 if word == "as" else 1
        found = date_at(words, i + skip, today) if lead else None
        if found is not None:
            moment = _moment(found[0], until=word in _UNTIL_WORDS)
            if word in _UNTIL_WORDS:
                proposal.valid_until = moment
            else:
                proposal.valid_from = moment
            used.append((tokens[i].start, tokens[i + skip + found[1] - 1].end))
            i += skip + found[1]
            continue
        if word == "for":
            period = period_at(words, i, today)
            if period is not None and not period.past:
                duration = period.days
                used.append((tokens[i].start, tokens[i + period.length - 1].end))
                i += period.length
                continue
        i += 1
    if duration is not None and proposal.valid_until is None:
        start = proposal.valid_from or now
        try:
            proposal.valid_until = start + timedelta(days=duration)
        except OverflowError:  # "from 9999-12-31 for two weeks": no date ends it
            proposal.notes.append("The period read from the text ends past the last date: check the end.")
    if proposal.valid_from and proposal.valid_until and proposal.valid_until <= proposal.valid_from:
        proposal.notes.append("The end read from the text is not after its start: check both dates.")


def _moment(day: date, *, until: bool) -> datetime:
    """A day as a moment: its first second for a start, its last for an end ("until 31 March")."""
    return datetime.combine(day, END_OF_DAY if until else time(0), tzinfo=UTC)


def _blank(text: str, used: list[tuple[int, int]]) -> str:
    """``text`` with what was used replaced by spaces, so its words are not read twice."""
    chars = list(text)
    for start, end in used:
        chars[start:end] = " " * (end - start)
    return "".join(chars)


def _subject(text: str, subjects: list[str], matcher: Matcher, proposal: Proposal) -> None:
    if len(subjects) > 1:
        proposal.notes.append(
            f"Several users or groups are named ({len(subjects)}): fill in the one to grant."
        )
        return
    if not subjects:
        proposal.notes.append("No user or group id or known label found.")
        return
    labelled = matcher.named(SUBJECT, subjects[0])
    proposal.subject_id = subjects[0]
    if labelled:
        proposal.provider, proposal.subject_type = labelled[0].detail[0], labelled[0].detail[1]
    else:
        proposal.subject_type = "group" if re.search(r"\bgroup\b", text, re.IGNORECASE) else "user"


def _role(filters: dict, matcher: Matcher, proposal: Proposal) -> None:
    # A tenant's own role only in that tenant; with no tenant named, only the global roles.
    usable = [item for item in matcher.items if item.kind == ROLE and item.owner in ("", proposal.tenant)]
    named = [item for item in usable if item.value in filters.get(ROLE, [])]
    if len(named) == 1:
        proposal.role = named[0]
        return
    if len(named) > 1:
        proposal.notes.append("Several roles are named: choose one.")
        return
    asked = set(filters.get(PERMISSION, []))
    if not asked:
        proposal.notes.append("No role or permission named: choose the role.")
        return
    fitting = [item for item in usable if asked <= set(item.detail)]
    if not fitting:
        proposal.notes.append(f"No role gives all of {', '.join(sorted(asked))}: choose the role.")
        return
    costs = {item: _extra_cost(set(item.detail) - asked) for item in fitting}
    least = min(costs.values())
    best = [item for item, cost in costs.items() if cost == least]
    if len(best) > 1:
        names = ", ".join(sorted(item.value for item in best))
        proposal.notes.append(f"Roles {names} fit {', '.join(sorted(asked))} equally: choose one.")
        return
    proposal.role = best[0]
    extra = sorted(set(best[0].detail) - asked)
    proposal.notes.append(
        f"Role {best[0].value} gives {', '.join(sorted(asked))}"
        + (f" and also {', '.join(extra)}." if extra else ", nothing more.")
    )


def _extra_cost(extra: set[str]) -> int:
    return sum(1 if code.rsplit(".", 1)[-1] in _READ_ACTIONS else 3 for code in extra)
