"""The pure claim rules: plain dicts and an injected ``now``, no Django, no network."""

from __future__ import annotations

import pytest

from accounts.claims import ClaimRules, TokenRejected, claims_evaluate, is_guid

TID = "11111111-1111-4111-8111-111111111111"
OID = "55555555-5555-4555-8555-555555555555"
NOW = 1_800_000_000
RULES = ClaimRules(
    authority="https://login.microsoftonline.com",
    tenant_ids=frozenset({TID}),
    audiences=frozenset({"api://issuer"}),
    required_scopes=frozenset({"access_as_user"}),
    required_roles=frozenset({"Tokens.Exchange"}),
    leeway=30,
)


def claims(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "iss": f"https://login.microsoftonline.com/{TID}/v2.0",
        "aud": "api://issuer",
        "tid": TID,
        "oid": OID,
        "azp": "client",
        "scp": "access_as_user",
        "iat": NOW,
        "nbf": NOW,
        "exp": NOW + 3600,
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def check(
    token_claims: dict, *, now: float = NOW, rules: ClaimRules = RULES, key_issuer: str | None = None
) -> str:
    with pytest.raises(TokenRejected) as caught:
        claims_evaluate(claims=token_claims, rules=rules, now=now, key_issuer=key_issuer)
    return caught.value.check


def test_it_accepts_a_token_up_to_the_leeway_past_its_expiry():
    assert claims_evaluate(claims=claims(), rules=RULES, now=NOW + 3600 + 29).oid == OID
    assert check(claims(), now=NOW + 3600 + 30) == "expired"


def test_it_accepts_a_token_up_to_the_leeway_before_its_start():
    assert claims_evaluate(claims=claims(), rules=RULES, now=NOW - 30).oid == OID
    assert check(claims(), now=NOW - 31) == "not_yet_valid"


def test_it_checks_the_jwks_key_issuer_with_the_tenant_template():
    template = "https://login.microsoftonline.com/{tenantid}/v2.0"

    assert claims_evaluate(claims=claims(), rules=RULES, now=NOW, key_issuer=template).tid == TID
    assert check(claims(), key_issuer="https://login.microsoftonline.com/other/v2.0") == "issuer"


def test_a_v1_token_may_use_a_key_the_jwks_scopes_to_the_v2_issuer_of_its_directory():
    rules = ClaimRules(**{**RULES.__dict__, "allow_v1": True})
    v1 = claims(iss=f"https://sts.windows.net/{TID}/", azp=None, appid="client")

    identity = claims_evaluate(
        claims=v1, rules=rules, now=NOW, key_issuer="https://login.microsoftonline.com/{tenantid}/v2.0"
    )

    assert identity.client_id == "client"
    assert check(claims(iss=f"https://sts.windows.net/{TID}/")) == "issuer"


def test_an_app_token_without_idtyp_whose_subject_is_its_object_id_is_judged_by_its_roles():
    app = claims(scp=None, sub=OID, roles=["Tokens.Exchange"])

    assert claims_evaluate(claims=app, rules=RULES, now=NOW).app_only is True
    assert check(claims(scp=None, sub=OID)) == "role"


def test_an_app_token_with_idtyp_app_is_app_only_whatever_its_subject():
    app = claims(scp=None, idtyp="app", sub="a-pairwise-subject", roles=["Tokens.Exchange"])

    assert claims_evaluate(claims=app, rules=RULES, now=NOW).app_only is True


@pytest.mark.parametrize(
    "subject",
    [None, "a-pairwise-subject", "66666666-6666-4666-8666-666666666666", 12],
    ids=["none", "pairwise", "another-object-id", "number"],
)
def test_a_token_without_scp_and_without_proof_of_being_an_app_token_is_refused(subject):
    token = claims(scp=None, sub=subject, roles=["Tokens.Exchange"])

    with pytest.raises(TokenRejected) as caught:
        claims_evaluate(claims=token, rules=RULES, now=NOW)

    assert caught.value.check == "token_type"
    assert "neither delegated scopes (scp) nor proof" in caught.value.description


def test_group_values_that_are_not_group_object_ids_are_ignored_and_counted():
    group = "7d4c1a2b-3e5f-4a6b-8c7d-9e0f1a2b3c4d"
    values = [group, "Acme Admins", group.upper(), f"{{{group}}}", group + "\n", ""]

    identity = claims_evaluate(claims=claims(groups=values), rules=RULES, now=NOW)

    assert identity.groups == {group}
    assert identity.groups_ignored == 5


def test_a_token_with_only_group_object_ids_ignores_none():
    identity = claims_evaluate(claims=claims(groups=[OID]), rules=RULES, now=NOW)

    assert identity.groups == {OID}
    assert identity.groups_ignored == 0


def test_app_tokens_are_refused_when_no_role_is_required():
    rules = ClaimRules(**{**RULES.__dict__, "required_roles": frozenset()})

    assert check(claims(scp=None, idtyp="app", roles=["Tokens.Exchange"]), rules=rules) == "role"


def test_hasgroups_signals_overage_too():
    identity = claims_evaluate(claims=claims(hasgroups=True, groups=["g"]), rules=RULES, now=NOW)

    assert identity.groups_overage is True
    assert identity.groups == frozenset()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "1800000000", None])
def test_it_refuses_timestamps_that_are_not_finite_numbers(value):
    assert check(claims(exp=value)) in {"claims_invalid", "claims_missing"}


def test_an_object_id_with_a_trailing_newline_is_not_an_object_id():
    """'$' matches before a final newline: a second spelling of an oid would be a second principal."""
    assert check(claims(oid=OID + "\n")) == "claims_invalid"
    assert not is_guid(TID + "\n")
