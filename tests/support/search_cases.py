"""The labelled search and paste cases (tests/authz/search_cases.json) and the catalogue they are asked of.

The file holds a policy (tenants, roles, permissions, audiences, grants), labels for some of its
subjects, the questions with the interpretation each must get, and the pasted requests with the
fields each must fill, at the fixed moment ``now``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from accounts.models import User
from authz.models import SubjectLabel, Tenant
from authz.policy import policy_import
from authz.portal import tenant_administrator_add
from authz.search.catalogue import searchable_forget
from tests import fake_entra as entra

CASES = Path(__file__).resolve().parents[1] / "authz" / "search_cases.json"
# The provider of every grant and label in the cases.
PROVIDER = entra.TENANT_ID


@cache
def search_cases() -> dict[str, Any]:
    return json.loads(CASES.read_text())


def cases_now() -> datetime:
    return datetime.fromisoformat(search_cases()["now"])


def search_catalogue_load(settings: Any) -> None:
    """The cases' policy and labels in the database, its grants and labels of the fake Entra's directory."""
    settings.ENTRA_TENANT_ID = [PROVIDER]
    settings.ENTRA_DEV_DIRECTORY = False
    document = json.loads(json.dumps(search_cases()["policy"]))
    for grant in document["grants"]:
        grant["provider"] = PROVIDER
    policy_import(document=document, source="search_cases.json")
    for label in search_cases()["labels"]:
        SubjectLabel.objects.create(provider=PROVIDER, **label)


def acme_administrator(username: str, *, password: str) -> User:
    """A new portal user who administers the cases' tenant acme and nothing else."""
    user = User.objects.create_user(username, password=password)
    tenant_administrator_add(user=user, tenant=Tenant.objects.get(slug="acme"), by=None)
    return user


@pytest.fixture
def fresh_search() -> Iterator[None]:
    """No matcher kept from another test: a test database's ids repeat, and so could a fingerprint."""
    searchable_forget()
    yield
    searchable_forget()


@pytest.fixture
def catalogue(settings: Any, fresh_search: None) -> None:
    """The cases' catalogue loaded, matched by spelling only (the model's own tests are
    test_search_accuracy's)."""
    settings.PORTAL_SEARCH_MATCHING = "lexical"
    search_catalogue_load(settings)
