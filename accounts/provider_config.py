"""The identity providers an operator declares in ``IDENTITY_PROVIDERS_FILE``, checked when the settings load.

``identity_providers_load`` reads the JSON file, ``identity_providers_parse`` turns its document into
``IdentityProvider`` values; the first bad entry stops start-up with ``ImproperlyConfigured`` naming
the variable, the entry and the field. Nothing here touches Django's settings or apps, so
``config/settings.py`` calls it directly. The format (README "Identity providers")::

    {"providers": [{"name": "customers", "kind": "entra-external-id",
                    "tenant_id": "<GUID>", "audiences": ["<client id>"],
                    "required_scopes": ["access_as_user"]}]}
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from accounts.identity_provider import (
    AZURE_AD_B2C,
    ENTRA,
    ENTRA_AUTHORITY,
    ENTRA_EXTERNAL_ID,
    ENTRA_KINDS,
    KINDS,
    METADATA_PATH,
    OIDC,
    SIGNATURE_ALGORITHMS,
    IdentityProvider,
    v2_issuer,
)
from lib.env import is_loopback
from lib.guid import guid_normalise, is_guid
from lib.strict_json import unique_members

VARIABLE = "IDENTITY_PROVIDERS_FILE"

NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")
TENANT_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
USER_FLOW = re.compile(r"[A-Za-z0-9_-]{1,100}")
CLAIM = re.compile(r"[^\s\x00-\x1f\x7f]{1,200}")
TOKEN = re.compile(r"[^\s\x00-\x1f\x7f]{1,200}")
# ProviderKeySet.authority: where a provider's last known good keys are stored.
URL_MAX = 255
# A subject must be an id the provider never gives to someone else: these are names and addresses a
# person can change, or an administrator can hand to the next person.
MUTABLE_CLAIMS = frozenset(
    {"email", "emails", "preferred_username", "upn", "unique_name", "name", "given_name", "family_name",
     "nickname", "phone_number", "username", "login"}
)  # fmt: skip

COMMON_FIELDS = frozenset(
    {
        "name",
        "kind",
        "audiences",
        "required_scopes",
        "required_roles",
        "algorithms",
        "subject_claim",
        "groups_claim",
    }
)
KIND_FIELDS = {
    ENTRA: frozenset({"tenant_id", "authority", "allow_v1"}),
    ENTRA_EXTERNAL_ID: frozenset({"tenant_id", "authority", "issuer"}),
    AZURE_AD_B2C: frozenset({"tenant_id", "tenant_name", "user_flows", "authority", "issuer"}),
    OIDC: frozenset({"issuer", "metadata_url", "jwks_origin"}),
}
# The claim that names the subject: Entra's object id, or what each kind may use instead.
SUBJECT_CLAIMS = {ENTRA: ("oid",), ENTRA_EXTERNAL_ID: ("oid", "sub"), AZURE_AD_B2C: ("sub", "oid")}


def identity_providers_load(
    path: str | None, *, entra_tenant_ids: Collection[str] = (), entra_issuers: Collection[str] = ()
) -> tuple[IdentityProvider, ...]:
    """The providers declared in the JSON file at ``path`` (none without a file)."""
    if path is None:
        return ()
    try:
        with open(path, encoding="utf-8") as file:
            document = json.load(file, object_pairs_hook=unique_members)
    except OSError as exc:
        raise ImproperlyConfigured(f"{VARIABLE}: cannot read {path!r} ({exc.strerror or exc})") from None
    except (ValueError, RecursionError) as exc:
        raise ImproperlyConfigured(f"{VARIABLE}: {path!r} is not a JSON document ({exc})") from None
    return identity_providers_parse(document, entra_tenant_ids=entra_tenant_ids, entra_issuers=entra_issuers)


def identity_providers_parse(
    document: object, *, entra_tenant_ids: Collection[str] = (), entra_issuers: Collection[str] = ()
) -> tuple[IdentityProvider, ...]:
    """``{"providers": [...]}`` as providers; ``entra_tenant_ids`` and ``entra_issuers`` are those the
    ``ENTRA_*`` settings already trust, which no declared provider may claim again."""
    if not isinstance(document, dict) or set(document) != {"providers"}:
        raise ImproperlyConfigured(f'{VARIABLE}: expected an object with one member, "providers" (a list)')
    entries = document["providers"]
    if not isinstance(entries, list):
        raise ImproperlyConfigured(f'{VARIABLE}: "providers" must be a list')
    providers: list[IdentityProvider] = []
    issuers = {issuer: "a directory of ENTRA_TENANT_ID" for issuer in entra_issuers}
    for index, raw in enumerate(entries):
        entry = _Entry(index, raw)
        provider = entry.provider(entra_tenant_ids=entra_tenant_ids)
        if any(other.name == provider.name for other in providers):
            entry.fail("name", f"{provider.name!r} names two providers")
        for issuer in provider.issuers:
            if issuer in issuers:
                entry.fail("issuer", f"{issuer!r} is already the issuer of {issuers[issuer]}")
            issuers[issuer] = f"provider {provider.name!r}"
        providers.append(provider)
    return tuple(providers)


@dataclass
class _Entry:
    """One element of ``providers``, read field by field; ``fail`` names the entry and the field."""

    index: int
    raw: object

    def fail(self, field: str, problem: str) -> NoReturn:
        name = self.raw.get("name") if isinstance(self.raw, dict) else None
        label = f"providers[{self.index}]" + (f" ({name!r})" if isinstance(name, str) else "")
        raise ImproperlyConfigured(f"{VARIABLE}: {label}: {field}: {problem}")

    def provider(self, *, entra_tenant_ids: Collection[str]) -> IdentityProvider:
        if not isinstance(self.raw, dict):
            self.fail("entry", "expected an object")
        raw: dict[str, Any] = self.raw
        name = self.string("name", required=True)
        if not NAME.fullmatch(name) or is_guid(name):
            self.fail("name", "expected a slug of 1-40 lower-case letters, digits and hyphens (not a GUID)")
        kind = self.string("kind", required=True)
        if kind not in KINDS:
            self.fail("kind", f"expected one of {', '.join(KINDS)}, got {kind!r}")
        for field in sorted(set(raw) - COMMON_FIELDS - KIND_FIELDS[kind]):
            self.fail(field, f"not a field of kind {kind}")
        required_scopes = self.tokens("required_scopes")
        required_roles = self.tokens("required_roles")
        if not (required_scopes or required_roles):
            self.fail("required_scopes", "a provider needs required_scopes or required_roles (or both)")
        fields: dict[str, Any] = {
            "name": name,
            "kind": kind,
            "audiences": self.tokens("audiences", required=True),
            "required_scopes": required_scopes,
            "required_roles": required_roles,
            "algorithms": self.algorithms(),
            "subject_claim": self.subject_claim(kind),
            "groups_claim": self.groups_claim(kind),
        }
        if kind == OIDC:
            return IdentityProvider(**fields, **self.oidc_fields())
        tenant_id = self.tenant_id(kind, entra_tenant_ids)
        if kind == ENTRA:
            authority = self.url("authority", default=ENTRA_AUTHORITY, origin_only=True)
            allow_v1 = raw.get("allow_v1", False)
            if not isinstance(allow_v1, bool):
                self.fail("allow_v1", "expected true or false")
            return self.checked(
                IdentityProvider(
                    **fields,
                    issuer=v2_issuer(authority, tenant_id),
                    jwks_origin=authority,
                    authority=authority,
                    tenant_id=tenant_id,
                    allow_v1=allow_v1,
                )
            )
        if kind == ENTRA_EXTERNAL_ID:
            authority = self.url("authority", default=f"https://{tenant_id}.ciamlogin.com", origin_only=True)
            issuer = self.url("issuer", default=v2_issuer(authority, tenant_id))
            return self.checked(
                IdentityProvider(
                    **fields, issuer=issuer, jwks_origin=authority, authority=authority, tenant_id=tenant_id
                )
            )
        tenant_name = self.string("tenant_name", required=True)
        if not TENANT_NAME.fullmatch(tenant_name):
            self.fail("tenant_name", "expected the tenant's name as in NAME.onmicrosoft.com, lower-case")
        authority = self.url("authority", default=f"https://{tenant_name}.b2clogin.com", origin_only=True)
        # B2C writes its issuer with a trailing slash, the same for every user flow of the tenant.
        issuer = self.url("issuer", default=f"{authority}/{tenant_id}/v2.0/")
        return self.checked(
            IdentityProvider(
                **fields,
                issuer=issuer,
                jwks_origin=authority,
                authority=authority,
                tenant_id=tenant_id,
                tenant_name=tenant_name,
                accepted_user_flows=self.user_flows(),
            )
        )

    def checked(self, provider: IdentityProvider) -> IdentityProvider:
        flows = provider.accepted_user_flows or (None,)
        if any(len(provider.metadata_url_of(flow)) > URL_MAX for flow in flows):
            self.fail("authority", f"the discovery URL it makes is longer than {URL_MAX} characters")
        return provider

    def oidc_fields(self) -> dict[str, Any]:
        issuer = self.url("issuer", required=True)
        metadata_url = self.url("metadata_url", default=issuer.rstrip("/") + METADATA_PATH)
        if len(metadata_url) > URL_MAX:
            self.fail("metadata_url", f"longer than {URL_MAX} characters")
        parts = urlsplit(metadata_url)
        jwks_origin = self.url("jwks_origin", default=f"{parts.scheme}://{parts.netloc}", origin_only=True)
        return {"issuer": issuer, "metadata_url": metadata_url, "jwks_origin": jwks_origin}

    # --- fields ------------------------------------------------------------------------------------
    def string(self, field: str, *, required: bool = False) -> str:
        value = self.raw.get(field) if isinstance(self.raw, dict) else None
        if value is None and not required:
            return ""
        if not isinstance(value, str) or not value:
            self.fail(field, "expected a non-empty string")
        return value

    def tokens(self, field: str, *, required: bool = False) -> tuple[str, ...]:
        value = self.raw.get(field, []) if isinstance(self.raw, dict) else []
        if not isinstance(value, list) or not all(
            isinstance(item, str) and TOKEN.fullmatch(item) for item in value
        ):
            self.fail(field, "expected a list of strings without spaces")
        if required and not value:
            self.fail(field, "expected at least one")
        if len(set(value)) != len(value):
            self.fail(field, "lists a value twice")
        return tuple(value)

    def algorithms(self) -> tuple[str, ...]:
        names = self.tokens("algorithms") or ("RS256",)
        for name in names:
            if name.lower() == "none" or name.upper().startswith("HS"):
                self.fail("algorithms", f"{name} is refused: never none or HMAC (a provider's key is public)")
            if name not in SIGNATURE_ALGORITHMS:
                self.fail("algorithms", f"{name!r} is not one of {', '.join(SIGNATURE_ALGORITHMS)}")
        return names

    def subject_claim(self, kind: str) -> str:
        allowed = SUBJECT_CLAIMS.get(kind)
        claim = self.string("subject_claim") or (allowed[0] if allowed else "sub")
        if allowed is not None and claim not in allowed:
            self.fail("subject_claim", f"a {kind} provider's subject is {' or '.join(allowed)}")
        if not CLAIM.fullmatch(claim):
            self.fail("subject_claim", "expected a claim name")
        if claim in MUTABLE_CLAIMS:
            self.fail(
                "subject_claim", f"{claim} can change or pass to someone else; use an immutable id (sub)"
            )
        return claim

    def groups_claim(self, kind: str) -> str | None:
        default = "groups" if kind in ENTRA_KINDS else None
        value = self.raw.get("groups_claim", default) if isinstance(self.raw, dict) else default
        if value is None:
            return None
        if kind in ENTRA_KINDS and value != "groups":
            self.fail("groups_claim", f'a {kind} provider\'s groups are in "groups" (or null: none)')
        if not isinstance(value, str) or not CLAIM.fullmatch(value):
            self.fail("groups_claim", "expected a claim name or null")
        return value

    def tenant_id(self, kind: str, entra_tenant_ids: Collection[str]) -> str:
        raw = self.string("tenant_id", required=True)
        try:
            tenant_id = guid_normalise(raw)
        except ValueError:
            self.fail("tenant_id", "expected the directory (tenant) id, a GUID")
        if kind in ENTRA_KINDS and tenant_id in entra_tenant_ids:
            self.fail("tenant_id", "that directory is already trusted through ENTRA_TENANT_ID")
        return tenant_id

    def user_flows(self) -> tuple[str, ...]:
        flows = self.tokens("user_flows", required=True)
        if not all(USER_FLOW.fullmatch(flow) for flow in flows):
            self.fail("user_flows", "expected user flow (policy) names such as B2C_1_signupsignin")
        if len({flow.lower() for flow in flows}) != len(flows):
            self.fail("user_flows", "lists a user flow twice (B2C compares them case-insensitively)")
        return flows

    def url(
        self, field: str, *, default: str | None = None, required: bool = False, origin_only: bool = False
    ) -> str:
        value = self.string(field, required=required) or default or ""
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError for a malformed port
        except ValueError:
            self.fail(field, f"{value!r} is not a URL")
        if parts.scheme not in ("https", "http") or not parts.hostname or parts.username or parts.password:
            self.fail(field, f"expected an absolute https URL, got {value!r}")
        if parts.query or parts.fragment:
            self.fail(field, f"must not have a query or fragment, got {value!r}")
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            self.fail(field, f"plain http is allowed only for a loopback host, got {value!r}")
        if origin_only:
            if parts.path not in ("", "/"):
                self.fail(field, f"expected scheme, host and port only (no path), got {value!r}")
            return value.rstrip("/")
        return value
