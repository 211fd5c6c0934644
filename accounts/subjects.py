"""The shape of a subject or group id, per identity provider: what principals and grants may hold.

A directory trusted through the ``ENTRA_*`` settings is a provider named by its directory id (a
GUID); its users' object ids and its groups' ids are GUIDs, kept in their lower-case form as Entra
writes them. Any other provider's subjects and groups are its own strings, compared exactly (an
OpenID Connect ``sub`` is case-sensitive): not empty, at most 255 characters, without control
characters or surrounding spaces (a pasted id with a stray space would silently match nothing).

Pure: no Django, so the portal's forms, the models and the policy import share one rule.
"""

from __future__ import annotations

from lib.guid import GUID_EXAMPLE, guid_normalise, is_guid

# OpenID Connect Core §2: a ``sub`` is at most 255 ASCII characters.
SUBJECT_MAX = 255
# Provider names: an Entra directory id (36) or a declared provider's slug.
PROVIDER_MAX = 100


def is_directory_provider(provider: str) -> bool:
    """Whether ``provider`` is an Entra directory trusted by its id (its subjects are object ids)."""
    return is_guid(provider)


def subject_normalise(*, provider: str, subject: str) -> str:
    """The stored form of a user or group id of ``provider``, or ValueError saying what is wrong."""
    if is_directory_provider(provider):
        try:
            return guid_normalise(subject)
        except ValueError:
            raise ValueError(
                f"an Entra directory's object ids and group ids are GUIDs, e.g. {GUID_EXAMPLE}"
            ) from None
    if not subject:
        raise ValueError("the id is empty")
    if len(subject) > SUBJECT_MAX:
        raise ValueError(f"the id is longer than {SUBJECT_MAX} characters")
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in subject):
        raise ValueError("the id contains control characters")
    if subject != subject.strip():
        raise ValueError("the id starts or ends with a space")
    return subject
