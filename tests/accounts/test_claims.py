"""The pure claim rules: plain dicts and an injected ``now``, no Django, no network."""

from __future__ import annotations

import pytest

from accounts.claims import ClaimRules, TokenRejected, claims_evaluate, directory_of, is_guid

TID = "11111111-1111-4111-8111-111111111111"
OID = "55555555-5555-4555-8555-555555555555"
OTHER_TID = "22222222-2222-4222-8222-222222222222"
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


def test_a_v1_token_may_not_use_a_key_the_jwks_scopes_to_another_directory():
    rules = ClaimRules(**{**RULES.__dict__, "allow_v1": True})
    v1 = claims(iss=f"https://sts.windows.net/{TID}/", azp=None, appid="client")

    assert (
        check(v1, rules=rules, key_issuer=f"https://login.microsoftonline.com/{OTHER_TID}/v2.0") == "issuer"
    )
    assert check(v1, rules=rules, key_issuer=f"https://sts.windows.net/{OTHER_TID}/") == "issuer"


def test_a_v2_token_may_not_use_a_key_the_jwks_scopes_to_the_v1_issuer_of_its_directory():
    rules = ClaimRules(**{**RULES.__dict__, "allow_v1": True})

    assert check(claims(), rules=rules, key_issuer="https://sts.windows.net/{tenantid}/") == "issuer"


NOT_DIRECTORY_IDS = ["ABCDEF01-2345-4678-89AB-CDEF01234567", f"{{{TID}}}", TID + "\n", ""]


@pytest.mark.parametrize("tid", [*NOT_DIRECTORY_IDS, 5, [TID], {"tid": TID}], ids=repr)
def test_a_tid_that_is_not_a_directory_id_is_refused_even_when_listed_as_trusted(tid):
    """Runs on unverified claims: a list or an object must not reach the set lookup (a TypeError)."""
    rules = ClaimRules(**{**RULES.__dict__, "tenant_ids": frozenset(NOT_DIRECTORY_IDS)})

    with pytest.raises(TokenRejected) as caught:
        directory_of({"tid": tid}, rules=rules)

    assert caught.value.check == "claims_invalid"


def test_the_client_of_a_v2_token_is_its_azp_and_of_a_v1_token_its_appid():
    rules = ClaimRules(**{**RULES.__dict__, "allow_v1": True})
    v1 = claims(iss=f"https://sts.windows.net/{TID}/", azp=None)

    assert claims_evaluate(claims=claims(appid="other"), rules=RULES, now=NOW).client_id == "client"
    assert (
        claims_evaluate(claims={**v1, "appid": "app", "azp": "other"}, rules=rules, now=NOW).client_id
        == "app"
    )
    assert check(claims(azp=None, appid="client")) == "claims_missing"
    assert check(v1, rules=rules) == "claims_missing"


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize(
    "client_id",
    ["", ["client"], 7, {"id": "client"}, "c" * 129],
    ids=["empty", "list", "number", "object", "129"],
)
def test_a_malformed_client_id_is_refused_as_invalid(version, client_id):
    rules = ClaimRules(**{**RULES.__dict__, "allow_v1": True})
    token = client_of(version, client_id)

    assert check(token, rules=rules) == "claims_invalid"


@pytest.mark.parametrize("version", [1, 2])
def test_a_client_id_of_128_characters_is_accepted(version):
    rules = ClaimRules(**{**RULES.__dict__, "allow_v1": True})

    identity = claims_evaluate(claims=client_of(version, "c" * 128), rules=rules, now=NOW)

    assert identity.client_id == "c" * 128


def test_a_delegated_token_that_says_idtyp_user_is_accepted():
    identity = claims_evaluate(claims=claims(idtyp="user", scp="access_as_user extra"), rules=RULES, now=NOW)

    assert identity.app_only is False
    assert identity.scopes == {"access_as_user", "extra"}


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", [10**400, -(10**400)], ids=["huge", "huge-negative"])
def test_a_timestamp_beyond_the_range_of_a_float_is_refused_not_a_crash(claim, value):
    """``math.isfinite`` raises OverflowError on such an integer: that was a 500."""
    assert check(claims(**{claim: value})) == "claims_invalid"


def test_timestamps_at_zero_and_as_floats_are_timestamps():
    identity = claims_evaluate(claims=claims(nbf=0, iat=NOW - 0.5, exp=NOW + 0.5), rules=RULES, now=NOW)

    assert identity.oid == OID


def client_of(version: int, client_id: object) -> dict[str, object]:
    if version == 2:
        return claims(azp=client_id)
    return claims(iss=f"https://sts.windows.net/{TID}/", azp=None, appid=client_id)


V1_RULES = ClaimRules(**{**RULES.__dict__, "allow_v1": True})
NO_PROOF = (
    "the token carries neither delegated scopes (scp) nor proof that it is an application token "
    "(idtyp=app, or sub equal to oid)"
)


@pytest.mark.parametrize(
    ("token", "rules", "key_issuer", "check_", "description"),
    [
        (claims(tid=None), RULES, None, "claims_missing", "the token has no tid claim"),
        (claims(tid="acme"), RULES, None, "claims_invalid", "the tid claim is not a directory id"),
        (
            claims(tid=OTHER_TID),
            RULES,
            None,
            "tenant",
            "the token comes from a directory that is not trusted",
        ),
        (claims(iss=None), RULES, None, "claims_missing", "the token has no iss claim"),
        (
            claims(iss="https://sts.windows.net/x/"),
            RULES,
            None,
            "issuer",
            "the token's issuer is not its directory's Entra issuer",
        ),
        (
            claims(),
            RULES,
            "https://sts.windows.net/{tenantid}/",
            "issuer",
            "the signing key belongs to another issuer",
        ),
        (claims(aud=None), RULES, None, "claims_missing", "the token has no aud claim"),
        (claims(aud="api://other"), RULES, None, "audience", "the token was not issued for this service"),
        (claims(exp=None), RULES, None, "claims_missing", "the token has no exp claim"),
        (claims(nbf="soon"), RULES, None, "claims_invalid", "the nbf claim is not a timestamp"),
        (claims(iat=float("nan")), RULES, None, "claims_invalid", "the iat claim is not a timestamp"),
        (claims(exp=NOW - 60), RULES, None, "expired", "the token has expired"),
        (claims(nbf=NOW + 60), RULES, None, "not_yet_valid", "the token is not valid yet"),
        (
            claims(iat=NOW + 60),
            RULES,
            None,
            "issued_in_future",
            "the token claims to be issued in the future",
        ),
        (claims(oid=None), RULES, None, "claims_missing", "the token has no oid claim"),
        (claims(oid="ada"), RULES, None, "claims_invalid", "the oid claim is not an object id"),
        (claims(azp=None), RULES, None, "claims_missing", "the token names no client (azp or appid)"),
        (claims(azp=""), RULES, None, "claims_invalid", "the client id claim is malformed"),
        (claims(roles="Admin"), RULES, None, "claims_invalid", "the roles claim is not a list of strings"),
        (claims(groups=[1]), RULES, None, "claims_invalid", "the groups claim is not a list of strings"),
        (claims(scp=None, idtyp="user"), RULES, None, "scope", "a delegated token without scopes"),
        (claims(scp=None), RULES, None, "token_type", NO_PROOF),
        (claims(scp=None, idtyp="app"), RULES, None, "role", "the application token lacks a required role"),
        (claims(scp=["access_as_user"]), RULES, None, "claims_invalid", "the scp claim is not a string"),
        (
            claims(idtyp="app"),
            RULES,
            None,
            "claims_invalid",
            "an application token must not carry delegated scopes",
        ),
        (claims(scp="User.Read"), RULES, None, "scope", "the token lacks a required scope"),
        (
            claims(iss=f"https://sts.windows.net/{TID}/", azp=None),
            V1_RULES,
            None,
            "claims_missing",
            "the token names no client (azp or appid)",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) and " " not in value and "/" not in value else None,
)
def test_each_refusal_names_its_check_and_tells_the_client_why(token, rules, key_issuer, check_, description):
    """The description is the client's ``error_description``: safe, stable, one per rule."""
    with pytest.raises(TokenRejected) as caught:
        claims_evaluate(claims=token, rules=rules, now=NOW, key_issuer=key_issuer)

    assert (caught.value.check, caught.value.description) == (check_, description)
    assert str(caught.value) == f"{check_}: {description}"


def test_under_overage_no_group_value_is_read_so_none_is_counted_as_ignored():
    token = claims(_claim_names={"groups": "src1"}, groups=["Acme Admins"])

    identity = claims_evaluate(claims=token, rules=RULES, now=NOW)

    assert (identity.groups, identity.groups_overage, identity.groups_ignored) == (frozenset(), True, 0)
