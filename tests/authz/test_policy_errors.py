"""Policy import errors: every bad entry refused, named by entry and reason, nothing written."""

from __future__ import annotations

import copy

import pytest

from authz.models import Tenant
from authz.policy import PolicyError, policy_import
from tests.support.policy import (
    GROUP_ID,
    PROVIDER,
    USER_ID,
    canonical,
    design_example,
    errors_of,
    nothing_stored,
)

pytestmark = pytest.mark.django_db


# --- every error, with its message ------------------------------------------------------------


def mutated(path: str, value: object) -> dict:
    """The design example with one value set (path like 'grants.0.user'); value DELETE removes it."""
    document = copy.deepcopy(design_example())
    *parents, last = path.split(".")
    target = document
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if value is DELETE:
        del target[last]
    else:
        target[int(last) if isinstance(target, list) else last] = value
    return document


DELETE = object()

ERROR_CASES = [
    ("permissions.0.colour", "red", "permissions[0]: unknown key 'colour'"),
    ("permissions.0.code", DELETE, "permissions[0]: missing required field 'code'"),
    ("permissions.0.code", 7, "permissions[0]: 'code' must be a string, got number"),
    (
        "permissions.0.code",
        "Orders Read",
        "permissions[0]: code 'Orders Read' is invalid (use lower-case letters, digits and . _ : - "
        "(no spaces), starting and ending alphanumeric)",
    ),
    ("permissions.0.description", None, "permissions[0]: 'description' must be a string, got null"),
    ("permissions.0.description", "x" * 501, "permissions[0]: 'description' is longer than 500 characters"),
    (
        "permissions.0.requires_feature",
        "Big",
        "permissions[0]: requires_feature 'Big' is invalid (use lower-case letters, digits and . _ : - "
        "(no spaces), starting and ending alphanumeric)",
    ),
    ("audiences.0.id", DELETE, "audiences[0]: missing required field 'id'"),
    (
        "audiences.0.id",
        "api:// orders",
        "audiences[0]: id 'api:// orders' is invalid (printable characters without spaces, at most 200)",
    ),
    ("audiences.0.name", "", "audiences[0]: 'name' must not be empty"),
    ("audiences.0.name", "a\nb", "audiences[0]: 'name' must not contain control characters"),
    (
        "audiences.0.permissions",
        "orders.read",
        "audiences[0]: 'permissions' must be a list of permission codes, got string",
    ),
    ("audiences.0.permissions", ["orders.raed"], "audiences[0]: permission 'orders.raed' does not exist"),
    (
        "audiences.0.permissions",
        ["orders.read", "orders.read"],
        "audiences[0]: permission 'orders.read' is listed twice",
    ),
    (
        "roles.0.slug",
        "Viewer",
        "roles[0]: slug 'Viewer' is invalid (use lower-case letters, digits and hyphens)",
    ),
    ("roles.0.name", DELETE, "roles[0]: missing required field 'name'"),
    ("roles.0.name", "x" * 201, "roles[0]: 'name' is longer than 200 characters"),
    ("roles.0.permissions", ["orders.raed"], "roles[0]: permission 'orders.raed' does not exist"),
    ("roles.0.permissions", [3], "roles[0]: 'permissions' must be a list of permission codes, found number"),
    ("roles.0.tenant", "acmee", "roles[0]: tenant 'acmee' does not exist"),
    ("roles.0.tenant", 1, "roles[0]: 'tenant' must be a string or null, got number"),
    ("tenants.0.status", "closed", "tenants[0]: status 'closed' is not one of 'active', 'suspended'"),
    ("tenants.0.features", "exports", "tenants[0]: 'features' must be a list of feature codes, got string"),
    (
        "tenants.0.features",
        ["Big Exports"],
        "tenants[0]: feature 'Big Exports' is invalid (use lower-case letters, digits and . _ : - "
        "(no spaces), starting and ending alphanumeric)",
    ),
    ("tenants.0.slug", True, "tenants[0]: 'slug' must be a string, got boolean"),
    ("grants.0.tenant", "acmee", "grants[0]: tenant 'acmee' does not exist"),
    ("grants.0.tenant", DELETE, "grants[0]: missing required field 'tenant'"),
    ("grants.0.role", "viewr", "grants[0]: role 'viewr' does not exist"),
    ("grants.0.group", GROUP_ID, "grants[0]: has both 'user' and 'group'; give exactly one"),
    ("grants.0.user", DELETE, "grants[0]: needs a 'user' or a 'group'"),
    ("grants.0.user", None, "grants[0]: needs a 'user' or a 'group'"),
    ("grants.0.user", "{" + USER_ID + "}", f"grants[0]: user '{{{USER_ID}}}' is not a GUID"),
    ("grants.1.group", "admins", "grants[1]: group 'admins' is not a GUID"),
    # '$' matches before a final newline: these were stored and could never match a token.
    ("grants.0.user", USER_ID + "\n", f"grants[0]: user '{USER_ID}\\n' is not a GUID"),
    (
        "audiences.0.id",
        "api://orders\n",
        "audiences[0]: id 'api://orders\\n' is invalid (printable characters without spaces, at most 200)",
    ),
    ("grants.0.user", 42, "grants[0]: 'user' must be a string or null, got number"),
    ("grants.0.valid_until", "tomorrow", "grants[0]: valid_until 'tomorrow' is not an ISO 8601 timestamp"),
    (
        "grants.0.valid_until",
        "2027-01-01T00:00:00",
        "grants[0]: valid_until '2027-01-01T00:00:00' has no time zone"
        " (end it with Z or an offset such as +01:00)",
    ),
    (
        "grants.0.valid_from",
        "2027-01-01",
        "grants[0]: valid_from '2027-01-01' has no time zone (end it with Z or an offset such as +01:00)",
    ),
    ("grants.0.valid_from", "2027-01-01T00:00:00Z", "grants[0]: valid_until must be after valid_from"),
    ("grants.0.valid_from", "2027-01-01T02:00:00+01:00", "grants[0]: valid_until must be after valid_from"),
    ("grants.0.expires", "2027-01-01T00:00:00Z", "grants[0]: unknown key 'expires'"),
    ("grants.0", "acme/viewer", "grants[0]: expected an object, got string"),
    ("grants", {"tenant": "acme"}, "grants: expected a list, got object"),
    (
        "users",
        [],
        "policy: unknown top-level key 'users'"
        " (expected features, permissions, audiences, roles, tenants, grants)",
    ),
]


@pytest.mark.parametrize(("path", "value", "message"), ERROR_CASES, ids=[case[2] for case in ERROR_CASES])
def test_it_rejects_a_bad_entry_naming_it_and_the_reason(path, value, message):
    errors = errors_of(mutated(path, value))

    # A bad name also leaves the entries that refer to it without a target: those errors follow.
    assert errors[0] == message
    assert all(error.startswith(LATER_KINDS[path.split(".")[0]]) for error in errors[1:])
    assert nothing_stored()


LATER_KINDS = {
    "permissions": ("audiences", "roles"),
    "audiences": (),
    "roles": ("grants",),
    "tenants": ("roles", "grants"),
    "grants": (),
    "users": (),
}


def test_an_entry_that_names_itself_well_adds_no_second_error_to_references():
    document = design_example()
    document["permissions"][0]["description"] = 5
    document["tenants"][0]["status"] = "gone"
    document["roles"][0]["name"] = ""

    assert errors_of(document) == [
        "permissions[0]: 'description' must be a string, got number",
        "roles[0]: 'name' must not be empty",
        "tenants[0]: status 'gone' is not one of 'active', 'suspended'",
    ]


def test_it_rejects_a_document_that_is_not_an_object():
    assert errors_of([1, 2]) == ["policy: expected a JSON object at the top level, got list"]


@pytest.mark.parametrize(
    ("kind", "entry", "message"),
    [
        (
            "permissions",
            {"code": "orders.read"},
            "permissions[1]: duplicate permission 'orders.read' (first at permissions[0])",
        ),
        (
            "audiences",
            {"id": "api://orders", "name": "x"},
            "audiences[1]: duplicate audience 'api://orders' (first at audiences[0])",
        ),
        (
            "roles",
            {"slug": "viewer", "name": "x"},
            "roles[1]: duplicate role 'viewer' (global) (first at roles[0])",
        ),
        (
            "tenants",
            {"slug": "acme", "name": "x"},
            "tenants[1]: duplicate tenant 'acme' (first at tenants[0])",
        ),
        (
            "grants",
            {"tenant": "acme", "role": "viewer", "provider": PROVIDER, "user": USER_ID.upper()},
            f"grants[2]: duplicate grant of role 'viewer' to user '{USER_ID}' of provider '{PROVIDER}'"
            " in tenant 'acme' (first at grants[0])",
        ),
    ],
)
def test_it_rejects_duplicates_inside_the_file(kind, entry, message):
    document = design_example()
    document[kind].append(entry)

    assert errors_of(document) == [message]


def test_it_rejects_a_grant_of_another_tenants_role():
    document = canonical()
    document["grants"].append({"tenant": "globex", "role": "auditor", "provider": PROVIDER, "user": USER_ID})

    assert errors_of(document) == ["grants[4]: role 'auditor' belongs to tenant 'acme', not to 'globex'"]


def test_it_rejects_a_tenant_role_that_clashes_with_a_global_role():
    policy_import(document=design_example())
    document = {"roles": [{"slug": "viewer", "name": "Acme viewer", "tenant": "acme"}]}

    assert errors_of(document) == ["roles[0]: role 'viewer' clashes with the global role of that slug"]


def test_it_rejects_a_global_role_that_clashes_with_a_tenant_role():
    policy_import(document=canonical())
    document = {"roles": [{"slug": "auditor", "name": "Auditor"}]}

    assert errors_of(document) == [
        "roles[0]: global role 'auditor' clashes with the role 'auditor' of tenant 'acme'"
    ]


def test_it_reports_every_error_in_file_order():
    document = design_example()
    document["grants"][1]["group"] = "nope"
    document["roles"][0]["permissions"] = ["missing"]
    document["permissions"][0]["code"] = "Bad Code"

    errors = errors_of(document)

    assert [error.split(":")[0] for error in errors] == [
        "permissions[0]",
        "audiences[0]",  # its permission is the one whose code is bad
        "roles[0]",
        "grants[1]",
    ]


def test_it_caps_the_error_list_and_says_how_many_more():
    document = {
        "grants": [{"tenant": "acme", "role": "viewer", "provider": PROVIDER, "user": "x"} for _ in range(80)]
    }

    with pytest.raises(PolicyError) as caught:
        policy_import(document=document)

    assert len(caught.value.errors) == 50
    assert caught.value.total == 80
    assert caught.value.lines()[-1] == "… and 30 more errors"


def test_it_refuses_a_misspelt_tenant_feature_once_features_are_declared():
    policy_import(document=canonical())
    document = canonical()
    document["tenants"][0]["features"] = ["exprots"]

    assert errors_of(document) == [
        "tenants[0]: feature 'exprots' is not in the feature catalogue; did you mean 'exports'?"
    ]
    assert Tenant.objects.get(slug="acme").features == ["exports", "sso"]
