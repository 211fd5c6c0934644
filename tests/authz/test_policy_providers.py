"""A grant names its identity provider in the policy file: parsed and planned without a database."""

from __future__ import annotations

from authz.policy.document import ErrorList, PolicyError
from authz.policy.parsing import document_parse
from authz.policy.planner import PolicyPlan, StoredGrant, StoredPolicy, policy_plan

DIRECTORY = "11111111-1111-4111-8111-111111111111"
SECOND = "22222222-2222-4222-8222-222222222222"
OKTA = "acme-okta"
USER_ID = "2f0e3b4c-8a1d-4c5e-9f60-7b8c9d0e1f2a"
STORED = StoredPolicy(
    tenants={"acme": ("Acme", "active", ())}, roles={(None, "viewer"): ("Viewer", frozenset())}
)


def plan(
    grants: list[dict], providers: tuple[str, ...], stored: StoredPolicy = STORED, prune: bool = False
) -> tuple[PolicyPlan, list[str]]:
    errors = ErrorList()
    parsed = document_parse({"grants": grants}, errors, None, providers=providers)
    result = policy_plan(parsed, stored, prune, errors)
    try:
        errors.raise_if_any()
    except PolicyError as exc:
        return result, exc.errors
    return result, []


def user_grant(**fields: object) -> dict:
    return {"tenant": "acme", "role": "viewer", "user": USER_ID, **fields}


def keys(result: PolicyPlan) -> list[tuple]:
    return [result.grant_keys[spec.index] for spec in result.creates["grants"]]


def test_with_one_trusted_provider_a_grant_may_leave_it_out_and_gets_that_one():
    result, errors = plan([user_grant()], (DIRECTORY,))

    assert errors == []
    assert keys(result) == [("acme", (None, "viewer"), "user", DIRECTORY, USER_ID)]


def test_with_several_trusted_providers_a_grant_must_name_one_and_the_error_names_the_grant():
    _result, errors = plan([user_grant(), user_grant(provider=SECOND)], (DIRECTORY, SECOND))

    assert errors == [
        f"grants[0]: the grant to user '{USER_ID}' needs a \"provider\": several identity providers"
        f" are trusted ('{DIRECTORY}', '{SECOND}')"
    ]


def test_a_null_provider_counts_as_left_out():
    _result, errors = plan([user_grant(provider=None)], (DIRECTORY, SECOND))

    assert len(errors) == 1 and 'needs a "provider"' in errors[0]
    assert plan([user_grant(provider=None)], (DIRECTORY,))[1] == []


def test_an_unknown_provider_is_refused_by_name_with_the_near_one():
    _result, errors = plan([user_grant(provider="acme-otka")], (DIRECTORY, OKTA))

    assert errors == [
        "grants[0]: provider 'acme-otka' is not a trusted identity provider; did you mean 'acme-okta'?"
    ]


def test_an_unknown_provider_far_from_any_lists_the_trusted_ones():
    _result, errors = plan([user_grant(provider="google")], (DIRECTORY,))

    assert errors == [
        f"grants[0]: provider 'google' is not a trusted identity provider (trusted: '{DIRECTORY}')"
    ]


def test_without_any_trusted_provider_no_grant_can_be_imported():
    _result, errors = plan([user_grant()], ())

    assert errors == [
        f"grants[0]: the grant to user '{USER_ID}' cannot name a provider:"
        " no identity provider is trusted here"
    ]


def test_a_provider_that_is_not_a_string_is_refused_once():
    _result, errors = plan([user_grant(provider=["x"])], (DIRECTORY,))

    assert errors == ["grants[0]: 'provider' must be a string or null, got list"]


def test_a_directory_id_in_capitals_is_the_same_provider():
    result, errors = plan([user_grant(provider=DIRECTORY.upper())], (DIRECTORY, SECOND))

    assert errors == []
    assert keys(result)[0][3] == DIRECTORY


def test_a_directory_providers_ids_are_guids_and_another_providers_are_its_own_strings():
    auth0_sub = "auth0|64b7f0c2e1"
    result, errors = plan(
        [
            user_grant(provider=OKTA, user=auth0_sub),
            {"tenant": "acme", "role": "viewer", "provider": OKTA, "group": "Finance Approvers"},
        ],
        (DIRECTORY, OKTA),
    )

    assert errors == []
    assert [key[3:] for key in keys(result)] == [(OKTA, auth0_sub), (OKTA, "Finance Approvers")]
    assert plan([user_grant(provider=DIRECTORY, user="auth0|x")], (DIRECTORY, OKTA))[1] == [
        "grants[0]: user 'auth0|x' is not a GUID"
    ]


def test_another_providers_ids_keep_their_case_and_refuse_control_characters_and_stray_spaces():
    result, errors = plan([user_grant(provider=OKTA, user="00uAbC")], (OKTA,))

    assert errors == [] and keys(result)[0][4] == "00uAbC"
    _result, errors = plan(
        [user_grant(provider=OKTA, user="a\u0000b"), user_grant(provider=OKTA, user=" 00u")], (OKTA,)
    )
    assert errors == [
        "grants[0]: user 'a\\x00b' is not an id of provider 'acme-okta': the id contains control characters",
        "grants[1]: user ' 00u' is not an id of provider 'acme-okta': the id starts or ends with a space",
    ]


def test_the_same_id_from_two_providers_is_two_grants_and_the_same_from_one_is_a_duplicate():
    grants = [user_grant(provider=DIRECTORY), user_grant(provider=SECOND), user_grant(provider=DIRECTORY)]

    _result, errors = plan(grants, (DIRECTORY, SECOND))

    assert errors == [
        f"grants[2]: duplicate grant of role 'viewer' to user '{USER_ID}' of provider '{DIRECTORY}'"
        " in tenant 'acme' (first at grants[0])"
    ]
    result, errors = plan(grants[:2], (DIRECTORY, SECOND))
    assert errors == [] and len(keys(result)) == 2


def test_prune_keeps_the_grant_of_the_named_provider_and_deletes_the_same_id_of_another():
    stored = StoredPolicy(
        tenants=STORED.tenants,
        roles=STORED.roles,
        grants={
            ("acme", (None, "viewer"), "user", DIRECTORY, USER_ID): StoredGrant(1, None, None),
            ("acme", (None, "viewer"), "user", SECOND, USER_ID): StoredGrant(2, None, None),
            # A provider no longer trusted: no file can name it, so --prune deletes its grants.
            ("acme", (None, "viewer"), "user", "retired-idp", USER_ID): StoredGrant(3, None, None),
        },
    )

    result, errors = plan([user_grant(provider=DIRECTORY)], (DIRECTORY, SECOND), stored, prune=True)

    assert errors == []
    assert result.grant_deletes == [2, 3]
    assert result.report.counts["grants"].unchanged == 1


def test_a_grant_left_without_provider_matches_the_stored_grant_of_the_only_provider():
    stored = StoredPolicy(
        tenants=STORED.tenants,
        roles=STORED.roles,
        grants={("acme", (None, "viewer"), "user", DIRECTORY, USER_ID): StoredGrant(1, None, None)},
    )

    result, errors = plan([user_grant()], (DIRECTORY,), stored, prune=True)

    assert errors == [] and result.grant_deletes == []
    assert result.report.counts["grants"].unchanged == 1
