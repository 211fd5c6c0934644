"""The words search understands without the catalogue: stop words, intents, validity and a domain thesaurus.

Pure data and two small functions. The thesaurus holds the vocabulary of access requests that a
catalogue's codes rarely spell out ("sign off" for approve, "finance" for billing): the bundled
embedding model does not relate these pairs (measured in bench/README.md), so they are listed here.
"""

from __future__ import annotations

import re


def _words(text: str) -> list[str]:
    return text.split()


# Grammar, politeness and the verbs of asking: never a filter.
STOP_WORDS = frozenset(
    _words("""
    a about all an and any are as at be been being by can could currently did do does else every
    for from get gets give given got had has have having he her here his how i if in into is it its
    just let lets me may might mine my now of on or our please s should some that the their them
    there these they this those to us via was we were what whats when where whether which will
    with would you your show list find tell need needs needed want wants able allowed whose
    giving gives include includes including contain contains containing
    """)
)
# Words that usually only pad a question ("users who can…", "access to…") but may name something in
# a catalogue (a "users.manage" permission): dropped only when the catalogue has no use for them.
FILLER_WORDS = frozenset(
    _words("""
    access permission permissions right rights user users member members
    hold holds holding currently one ones look lookup search
    api apis service services group groups
    """)
)

# Words that say what the admin wants listed.
INTENTS: dict[str, str] = {
    "grant": "grants",
    "grants": "grants",
    "assignment": "grants",
    "assignments": "grants",
    "who": "grants",
    "whom": "grants",
    # Asking for people is asking who holds grants.
    "people": "grants",
    "person": "grants",
    "persons": "grants",
    "everyone": "grants",
    "everybody": "grants",
    "anyone": "grants",
    "anybody": "grants",
    "someone": "grants",
    "somebody": "grants",
    "role": "roles",
    "roles": "roles",
    "tenant": "tenants",
    "tenants": "tenants",
    "customer": "tenants",
    "customers": "tenants",
    "organisation": "tenants",
    "organisations": "tenants",
    "organization": "tenants",
    "organizations": "tenants",
    "principal": "principals",
    "principals": "principals",
    "identity": "principals",
    "identities": "principals",
}

# Phrases of a grant's period, longest first where they overlap.
VALIDITY_PHRASES: dict[tuple[str, ...], str] = {
    ("not", "yet", "valid"): "future",
    ("not", "yet", "active"): "future",
    ("not", "started"): "future",
    ("yet", "to", "start"): "future",
    ("no", "longer", "valid"): "expired",
    ("run", "out"): "expiring",
    ("running", "out"): "expiring",
    ("runs", "out"): "expiring",
    ("about", "to", "expire"): "expiring",
    ("due", "to", "expire"): "expiring",
    ("ran", "out"): "expired",
    ("in", "effect"): "active",
}
VALIDITY_WORDS: dict[str, str] = {
    **dict.fromkeys(
        _words("expiring expire expires expiry expiration ending end ends lapsing lapse lapses"), "expiring"
    ),
    **dict.fromkeys(_words("expired lapsed ended stale"), "expired"),
    **dict.fromkeys(_words("active valid current live effective"), "active"),
    **dict.fromkeys(
        _words("future upcoming pending scheduled starting start starts begin begins beginning"), "future"
    ),
}
# A tenant's status; "active" is the tenant's when it qualifies tenants, the grant's otherwise.
TENANT_STATUS_WORDS: dict[str, str] = {
    **dict.fromkeys(
        _words("suspended suspend paused disabled blocked frozen inactive deactivated"), "suspended"
    ),
    "enabled": "active",
}

# Query words (or phrases) and the catalogue words they stand for. A word keeps its own meaning
# too: these only add candidates.
THESAURUS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("sign", "off"): ("approve",),
    ("signoff",): ("approve",),
    ("sign-off",): ("approve",),
    ("authorise",): ("approve",),
    ("authorize",): ("approve",),
    ("approval",): ("approve",),
    ("approvals",): ("approve",),
    ("okay",): ("approve",),
    ("accept",): ("approve",),
    ("view",): ("read",),
    ("see",): ("read",),
    ("look", "at"): ("read",),
    ("browse",): ("read",),
    ("inspect",): ("read",),
    ("query",): ("read",),
    ("edit",): ("write",),
    ("change",): ("write",),
    ("update",): ("write",),
    ("modify",): ("write",),
    ("amend",): ("write",),
    ("create",): ("write",),
    ("remove",): ("delete",),
    ("erase",): ("delete",),
    ("purge",): ("delete",),
    ("download",): ("export",),
    ("extract",): ("export",),
    ("reimburse",): ("refund",),
    ("repay",): ("refund",),
    ("raise",): ("issue",),
    ("administer",): ("manage", "admin"),
    ("administrate",): ("manage", "admin"),
    ("finance",): ("billing", "invoice"),
    ("financial",): ("billing", "invoice"),
    ("accounting",): ("billing", "invoice"),
    ("money",): ("billing", "payment"),
    ("invoicing",): ("invoice", "billing"),
    ("analytics",): ("report", "reporting"),
    ("dashboard",): ("report", "reporting"),
    ("dashboards",): ("report", "reporting"),
    ("statistics",): ("report", "reporting"),
    ("stock",): ("inventory", "warehouse"),
    ("purchase",): ("order",),
    ("purchases",): ("order",),
}
THESAURUS_LONGEST = max(len(phrase) for phrase in THESAURUS)

# Words that name no thing on their own in a catalogue name: "Orders API" is the orders audience.
GENERIC_NAME_WORDS = frozenset(
    _words(
        "api apis service services app application the of and for inc corp corporation ltd llc gmbh co "
        "company plc sa ag team"
    )
)

_SUFFIXES = ("ing", "ies", "es", "ed", "s", "e")


def stem(word: str) -> str:
    """A crude stem, the same on both sides of a comparison: approve, approves, approving → approv."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            base = word[: -len(suffix)]
            return base + "y" if suffix == "ies" else base
    return word


_SPLIT = re.compile(r"[^a-z0-9]+")


def name_words(text: str) -> list[str]:
    """The lower-case words of a name, slug, code or description ("orders.approve" → orders, approve)."""
    return [word for word in _SPLIT.split(text.lower()) if word]
