"""JSON objects that name a member once: the hook every parser of outside JSON passes to ``json.loads``.

``json.loads`` keeps the last of two members with the same name. RFC 7515 §5.2 and RFC 7519 §4 let a
parser either reject duplicates or keep the last; two parsers that disagree on which one counts is how
confusion attacks start, and in a policy file a repeated key would silently drop an entry. Every
parser here rejects them: the Entra token's header and claims, the exchange's JSON body, policy files.
"""

from __future__ import annotations

from typing import Any


class DuplicateMember(ValueError):
    """A JSON object names a member twice; ``name`` is the repeated name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"duplicate key {name!r} in a JSON object")
        self.name = name


def unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for ``json.loads``: the object, or ``DuplicateMember`` for a repeated name."""
    members = dict(pairs)
    if len(members) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise DuplicateMember(name)
            seen.add(name)
    return members
