"""Entra identifiers (directory, object and group ids): one canonical form, lower-case 8-4-4-4-12."""

from __future__ import annotations

import re
from typing import TypeGuard

# Only the usual form: uuid.UUID alone would also take braces, "urn:uuid:" and bare hex.
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# The example that forms, messages and commands show a person typing a GUID.
GUID_EXAMPLE = "2f0e3b4c-8a1d-4c5e-9f60-7b8c9d0e1f2a"


def is_guid(value: object) -> TypeGuard[str]:
    """A GUID already in its canonical lower-case form (how Entra writes tid, oid and group ids)."""
    return isinstance(value, str) and GUID.fullmatch(value) is not None


def guid_normalise(value: str) -> str:
    """The canonical form of a GUID typed or imported by a person (any case, stray spaces), or ValueError."""
    text = value.strip().lower()
    if not is_guid(text):
        raise ValueError(value)
    return text
