"""An identity provider we trust, as plain data: its kind, its issuer, its rules and where its keys are.

Pure (no Django): ``accounts.provider_config`` builds these from ``IDENTITY_PROVIDERS_FILE`` when the
settings load, ``accounts.providers`` adds one per directory of the ``ENTRA_*`` settings, and the
claim rules (``accounts.claims``) and the key cache (``accounts.provider_keys``) read them.

The kinds differ in where the metadata lives and in the claims their tokens carry:

- ``entra``: a workforce directory; issuer ``{authority}/{tenant_id}/v2.0`` (and, when allowed, the
  v1 issuer ``https://sts.windows.net/{tenant_id}/``); subject ``oid``; ``scp`` or ``roles``.
- ``entra-external-id``: a customer tenant; issuer ``https://{tenant_id}.ciamlogin.com/{tenant_id}/v2.0``,
  metadata under the same authority; otherwise Entra's claims.
- ``azure-ad-b2c``: one metadata document per user flow,
  ``{authority}/{tenant_name}.onmicrosoft.com/{flow}/v2.0/.well-known/openid-configuration``; the
  token names its flow in ``tfp`` (or ``acr``); subject ``sub`` (or ``oid``).
- ``oidc``: any OpenID Connect issuer; metadata at ``{issuer}/.well-known/openid-configuration``;
  subject ``sub``; scopes in ``scope`` or ``scp``, as the provider writes them.
"""

from __future__ import annotations

from dataclasses import dataclass

ENTRA = "entra"
ENTRA_EXTERNAL_ID = "entra-external-id"
AZURE_AD_B2C = "azure-ad-b2c"
OIDC = "oidc"
KINDS = (ENTRA, ENTRA_EXTERNAL_ID, AZURE_AD_B2C, OIDC)
# Tokens of these kinds carry Entra's tid and oid, groups as object ids, and Entra's overage signal.
ENTRA_KINDS = frozenset({ENTRA, ENTRA_EXTERNAL_ID})

# The JWS algorithms a provider may sign with: never "none", never HMAC (a public key is no secret).
SIGNATURE_ALGORITHMS = ("RS256", "PS256", "ES256")

ENTRA_AUTHORITY = "https://login.microsoftonline.com"
METADATA_PATH = "/.well-known/openid-configuration"


def v2_issuer(authority: str, tid: str) -> str:
    """The v2 issuer of directory ``tid`` under an authority (also the base of its discovery URL)."""
    return f"{authority}/{tid}/v2.0"


def v1_issuer(tid: str) -> str:
    return f"https://sts.windows.net/{tid}/"


@dataclass(frozen=True)
class IdentityProvider:
    """One trusted provider. ``name`` is the provider half of every principal and grant it vouches for.

    ``authority`` is the base URL of the Entra kinds and of B2C (empty for ``oidc``, whose
    ``metadata_url`` is given); ``jwks_origin`` is the origin its ``jwks_uri`` must be on.
    """

    name: str
    kind: str
    issuer: str
    audiences: tuple[str, ...]
    required_scopes: tuple[str, ...]
    required_roles: tuple[str, ...]
    subject_claim: str
    groups_claim: str | None
    algorithms: tuple[str, ...]
    jwks_origin: str
    authority: str = ""
    metadata_url: str = ""
    accepted_user_flows: tuple[str, ...] = ()
    tenant_id: str = ""
    tenant_name: str = ""
    allow_v1: bool = False

    @property
    def issuers(self) -> tuple[str, ...]:
        """Every ``iss`` this provider's tokens may carry (a v1 Entra issuer only when allowed)."""
        if self.kind == ENTRA and self.allow_v1:
            return (self.issuer, v1_issuer(self.tenant_id))
        return (self.issuer,)

    def metadata_url_of(self, user_flow: str | None = None) -> str:
        """The discovery document's URL: per user flow for B2C, one per provider otherwise."""
        if self.kind == AZURE_AD_B2C:
            return f"{self.authority}/{self.tenant_name}.onmicrosoft.com/{user_flow}/v2.0{METADATA_PATH}"
        if self.kind in ENTRA_KINDS:
            return f"{v2_issuer(self.authority, self.tenant_id)}{METADATA_PATH}"
        return self.metadata_url

    def user_flow_accepted(self, value: object) -> str | None:
        """The configured spelling of user flow ``value`` when it is accepted (B2C compares them
        case-insensitively), else None."""
        if not isinstance(value, str):
            return None
        lowered = value.lower()
        return next((flow for flow in self.accepted_user_flows if flow.lower() == lowered), None)


def entra_directory(
    *,
    tid: str,
    authority: str,
    audiences: tuple[str, ...],
    required_scopes: tuple[str, ...],
    required_roles: tuple[str, ...],
    allow_v1: bool = False,
) -> IdentityProvider:
    """A workforce directory trusted through the ``ENTRA_*`` settings: the provider named by its ``tid``.

    Its keys are cached and stored under (``authority``, ``tid``) as they always were.
    """
    return IdentityProvider(
        name=tid,
        kind=ENTRA,
        issuer=v2_issuer(authority, tid),
        audiences=audiences,
        required_scopes=required_scopes,
        required_roles=required_roles,
        subject_claim="oid",
        groups_claim="groups",
        algorithms=("RS256",),
        jwks_origin=authority,
        authority=authority,
        tenant_id=tid,
        allow_v1=allow_v1,
    )
