"""Policy as code: parsing, validation, idempotent and atomic import, prune, history, export, commands."""

from __future__ import annotations

import copy
import io
import json
from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from authz.management.commands import import_policy
from authz.models import Audience, Grant, Permission, Role, Tenant
from authz.policy import PolicyError, grants_copy_supported, policy_dumps, policy_export, policy_import

pytestmark = pytest.mark.django_db

USER_ID = "2f0e3b4c-8a1d-4c5e-9f60-7b8c9d0e1f2a"
GROUP_ID = "7d4c1a2b-3e5f-4a6b-8c7d-9e0f1a2b3c4d"
OTHER_USER = "0b6f9a52-3c1e-4d7a-b2f8-5e9c0d1a2b3c"


def design_example() -> dict:
    """DESIGN.md's example policy, with real GUIDs for the Entra ids."""
    return {
        "permissions": [{"code": "orders.read", "description": "Read orders", "requires_feature": None}],
        "audiences": [{"id": "api://orders", "name": "Orders API", "permissions": ["orders.read"]}],
        "roles": [{"slug": "viewer", "name": "Viewer", "permissions": ["orders.read"], "tenant": None}],
        "tenants": [{"slug": "acme", "name": "Acme", "status": "active", "features": ["exports"]}],
        "grants": [
            {
                "tenant": "acme",
                "role": "viewer",
                "user": USER_ID,
                "valid_from": None,
                "valid_until": "2027-01-01T00:00:00Z",
            },
            {"tenant": "acme", "role": "viewer", "group": GROUP_ID},
        ],
    }


def canonical() -> dict:
    """A file written exactly as export_policy writes it: every key, sorted lists, UTC with Z."""
    return {
        "permissions": [
            {"code": "orders.export", "description": "Export orders", "requires_feature": "exports"},
            {"code": "orders.read", "description": "Read orders", "requires_feature": None},
            {"code": "orders.write", "description": "", "requires_feature": None},
        ],
        "audiences": [
            {"id": "api://orders", "name": "Orders API", "permissions": ["orders.read", "orders.write"]},
        ],
        "roles": [
            {
                "slug": "editor",
                "name": "Editor",
                "permissions": ["orders.read", "orders.write"],
                "tenant": None,
            },
            {"slug": "viewer", "name": "Viewer", "permissions": ["orders.read"], "tenant": None},
            {"slug": "auditor", "name": "Auditor", "permissions": ["orders.export"], "tenant": "acme"},
        ],
        "tenants": [
            {"slug": "acme", "name": "Acme", "status": "active", "features": ["exports", "sso"]},
            {"slug": "globex", "name": "Globex", "status": "suspended", "features": []},
        ],
        "grants": [
            {
                "tenant": "acme",
                "role": "auditor",
                "user": OTHER_USER,
                "valid_from": None,
                "valid_until": None,
            },
            {
                "tenant": "acme",
                "role": "viewer",
                "group": GROUP_ID,
                "valid_from": "2026-01-01T08:30:00Z",
                "valid_until": None,
            },
            {
                "tenant": "acme",
                "role": "viewer",
                "user": USER_ID,
                "valid_from": None,
                "valid_until": "2027-01-01T00:00:00.250000Z",
            },
            {"tenant": "globex", "role": "editor", "user": USER_ID, "valid_from": None, "valid_until": None},
        ],
    }


def counts(report) -> dict[str, tuple[int, int, int, int]]:
    return {kind: (c.created, c.updated, c.deleted, c.unchanged) for kind, c in report.counts.items()}


def errors_of(document: object, **options) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        policy_import(document=document, **options)
    return caught.value.errors


def nothing_stored() -> bool:
    return not any(m.objects.exists() for m in (Permission, Audience, Role, Tenant, Grant))


# --- importing --------------------------------------------------------------------------------


def test_it_imports_the_design_example():
    report = policy_import(document=design_example())

    assert counts(report) == {
        "permissions": (1, 0, 0, 0),
        "audiences": (1, 0, 0, 0),
        "roles": (1, 0, 0, 0),
        "tenants": (1, 0, 0, 0),
        "grants": (2, 0, 0, 0),
    }
    assert set(Audience.objects.get().permissions.values_list("code", flat=True)) == {"orders.read"}
    assert set(Role.objects.get(slug="viewer").permissions.values_list("code", flat=True)) == {"orders.read"}
    assert Tenant.objects.get(slug="acme").features == ["exports"]
    user_grant = Grant.objects.get(subject_type="user")
    assert user_grant.subject_id == USER_ID
    assert user_grant.valid_until == datetime(2027, 1, 1, tzinfo=UTC)
    assert Grant.objects.get(subject_type="group").subject_id == GROUP_ID


def test_a_second_import_changes_nothing():
    policy_import(document=design_example())

    report = policy_import(document=design_example())

    assert report.changes == 0
    assert counts(report)["grants"] == (0, 0, 0, 2)
    assert counts(report)["roles"] == (0, 0, 0, 1)


def test_export_of_a_canonical_import_equals_the_file():
    policy_import(document=canonical())

    assert policy_export() == canonical()


def test_export_then_import_is_a_no_op():
    policy_import(document=design_example())
    exported = json.loads(policy_dumps(policy_export()))

    report = policy_import(document=exported)

    assert report.changes == 0
    assert json.loads(policy_dumps(policy_export())) == exported


def test_it_updates_changed_entries_and_replaces_lists():
    policy_import(document=canonical())
    changed = canonical()
    changed["permissions"][2]["description"] = "Write orders"
    changed["roles"][0]["permissions"] = ["orders.read"]
    changed["audiences"][0]["name"] = "Orders"
    changed["tenants"][0]["features"] = ["sso"]
    changed["tenants"][1]["status"] = "active"
    changed["grants"][3]["valid_until"] = "2030-06-01T12:00:00+02:00"

    report = policy_import(document=changed)

    assert counts(report) == {
        "permissions": (0, 1, 0, 2),
        "audiences": (0, 1, 0, 0),
        "roles": (0, 1, 0, 2),
        "tenants": (0, 2, 0, 0),
        "grants": (0, 1, 0, 3),
    }
    assert list(Role.objects.get(slug="editor").permissions.values_list("code", flat=True)) == ["orders.read"]
    assert Tenant.objects.get(slug="acme").features == ["sso"]
    assert Grant.objects.get(tenant__slug="globex").valid_until == datetime(2030, 6, 1, 10, tzinfo=UTC)
    assert policy_export() == json.loads(json.dumps(changed)) | {"grants": policy_export()["grants"]}


def test_a_grant_may_use_its_tenants_own_role():
    policy_import(document=canonical())

    grant = Grant.objects.get(subject_id=OTHER_USER)

    assert grant.role.tenant.slug == "acme"


def test_an_import_may_reference_rows_already_stored():
    policy_import(document=canonical())
    more = {"grants": [{"tenant": "globex", "role": "viewer", "group": GROUP_ID}]}

    report = policy_import(document=more)

    assert counts(report)["grants"] == (1, 0, 0, 0)
    assert Grant.objects.count() == 5


def test_it_normalises_ids_and_timestamps():
    document = design_example()
    document["grants"][0]["user"] = USER_ID.upper()
    document["grants"][0]["valid_from"] = "2026-03-01T01:00:00+01:00"

    policy_import(document=document)

    grant = Grant.objects.get(subject_type="user")
    assert grant.subject_id == USER_ID
    assert grant.valid_from == datetime(2026, 3, 1, 0, tzinfo=UTC)


def test_a_dry_run_writes_nothing_and_reports_the_same():
    dry = policy_import(document=canonical(), dry_run=True)
    assert dry.dry_run
    assert nothing_stored()

    real = policy_import(document=canonical())

    assert counts(dry) == counts(real)
    assert real.changes == 13


def test_all_omitted_optional_fields_take_their_defaults():
    document = {
        "permissions": [{"code": "a.read"}],
        "roles": [{"slug": "r", "name": "R"}],
        "tenants": [{"slug": "t", "name": "T"}],
        "audiences": [{"id": "api://a", "name": "A"}],
        "grants": [{"tenant": "t", "role": "r", "user": USER_ID}],
    }

    policy_import(document=document)

    tenant = Tenant.objects.get()
    assert (tenant.status, tenant.features) == ("active", [])
    assert Permission.objects.get().description == ""
    assert Grant.objects.get().valid_until is None


def test_an_empty_document_changes_nothing():
    assert policy_import(document={}).changes == 0


# --- atomicity --------------------------------------------------------------------------------


def test_a_bad_entry_at_the_end_writes_nothing():
    document = canonical()
    document["grants"].append({"tenant": "acme", "role": "viewr", "user": USER_ID})

    assert errors_of(document) == ["grants[4]: role 'viewr' does not exist"]
    assert nothing_stored()


def test_a_bad_entry_leaves_stored_rows_untouched():
    policy_import(document=canonical())
    before = policy_export()
    document = canonical()
    document["permissions"][0]["description"] = "changed"
    document["grants"][0]["user"] = "not-a-guid"

    errors_of(document)

    assert policy_export() == before


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
        "policy: unknown top-level key 'users' (expected permissions, audiences, roles, tenants, grants)",
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
            {"tenant": "acme", "role": "viewer", "user": USER_ID.upper()},
            f"grants[2]: duplicate grant of role 'viewer' to user '{USER_ID}' in tenant 'acme'"
            " (first at grants[0])",
        ),
    ],
)
def test_it_rejects_duplicates_inside_the_file(kind, entry, message):
    document = design_example()
    document[kind].append(entry)

    assert errors_of(document) == [message]


def test_it_rejects_a_grant_of_another_tenants_role():
    document = canonical()
    document["grants"].append({"tenant": "globex", "role": "auditor", "user": USER_ID})

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
    document = {"grants": [{"tenant": "acme", "role": "viewer", "user": "x"} for _ in range(80)]}

    with pytest.raises(PolicyError) as caught:
        policy_import(document=document)

    assert len(caught.value.errors) == 50
    assert caught.value.total == 80
    assert caught.value.lines()[-1] == "… and 30 more errors"


# --- prune ------------------------------------------------------------------------------------


def test_prune_deletes_only_grants_missing_from_the_file():
    policy_import(document=canonical())
    document = canonical()
    del document["grants"][1:3]
    document["roles"] = document["roles"][:1]

    report = policy_import(document=document, prune=True)

    assert counts(report)["grants"] == (0, 0, 2, 2)
    assert Grant.objects.count() == 2
    assert Role.objects.count() == 3  # roles absent from the file are kept: prune is for grants only


def test_without_prune_grants_missing_from_the_file_are_kept():
    policy_import(document=canonical())
    document = canonical()
    document["grants"] = []

    report = policy_import(document=document)

    assert counts(report)["grants"] == (0, 0, 0, 0)
    assert Grant.objects.count() == 4


def test_prune_needs_a_grants_list():
    policy_import(document=canonical())

    assert errors_of({"permissions": []}, prune=True) == [
        "grants: --prune needs a 'grants' list in the file (an empty list deletes every grant)"
    ]
    assert Grant.objects.count() == 4


def test_a_dry_run_prune_deletes_nothing():
    policy_import(document=canonical())

    report = policy_import(document={"grants": []}, prune=True, dry_run=True)

    assert counts(report)["grants"] == (0, 0, 4, 0)
    assert Grant.objects.count() == 4


# --- history ----------------------------------------------------------------------------------


@pytest.fixture
def admin_user():
    return get_user_model().objects.create_user(username="ops", password="x")


def test_history_records_creates_with_the_actor_and_reason(admin_user):
    policy_import(document=canonical(), actor=admin_user)

    for model, expected in ((Permission, 3), (Audience, 1), (Role, 3), (Tenant, 2), (Grant, 4)):
        records = model.history.all()
        assert records.count() == expected, model
        assert {(r.history_type, r.history_user_id, r.history_change_reason) for r in records} == {
            ("+", admin_user.pk, "import_policy")
        }


def test_history_shows_a_changed_permission_list(admin_user):
    policy_import(document=canonical())
    document = canonical()
    document["roles"][0]["permissions"] = ["orders.read"]

    policy_import(document=document, actor=admin_user)

    editor = Role.objects.get(slug="editor")
    latest, first = editor.history.order_by("-history_id")[:2]
    assert latest.history_type == "~"
    assert latest.history_user == admin_user
    assert [p.permission.code for p in latest.permissions.all()] == ["orders.read"]
    assert sorted(p.permission.code for p in first.permissions.all()) == ["orders.read", "orders.write"]
    delta = latest.diff_against(first)
    assert delta.changed_fields == ["permissions"]


def test_history_records_updates_and_prune_deletions(admin_user):
    policy_import(document=canonical())
    document = canonical()
    document["grants"][0]["valid_until"] = "2030-01-01T00:00:00Z"
    del document["grants"][3]

    policy_import(document=document, prune=True, actor=admin_user)

    changed = Grant.history.filter(history_type="~").get()
    assert changed.subject_id == OTHER_USER
    assert changed.valid_until == datetime(2030, 1, 1, tzinfo=UTC)
    deleted = Grant.history.filter(history_type="-").get()
    assert (deleted.subject_id, deleted.tenant.slug) == (USER_ID, "globex")
    assert (deleted.history_user, deleted.history_change_reason) == (admin_user, "import_policy")


def test_grants_are_written_by_copy_on_postgresql(require_postgres):
    # If a model change turned COPY off, imports would silently fall back to the slower ORM path.
    assert grants_copy_supported()


def test_an_unchanged_import_writes_no_history():
    policy_import(document=canonical())
    before = sum(m.history.count() for m in (Permission, Audience, Role, Tenant, Grant))

    policy_import(document=canonical())

    assert sum(m.history.count() for m in (Permission, Audience, Role, Tenant, Grant)) == before


# --- progress ---------------------------------------------------------------------------------


def test_it_reports_progress_while_writing_grants():
    document = design_example()
    document["grants"] = [
        {"tenant": "acme", "role": "viewer", "user": f"00000000-0000-4000-8000-{n:012x}"} for n in range(20)
    ]
    seen = []

    policy_import(document=document, progress=lambda stage, done, total: seen.append((stage, done, total)))

    assert seen[-1] == ("writing grants", 20, 20)


# --- export -----------------------------------------------------------------------------------


def test_export_writes_one_entry_a_line_in_a_stable_order():
    policy_import(document=canonical())

    text = policy_dumps(policy_export())

    assert text == policy_dumps(canonical())
    assert text.splitlines()[1] == '  "permissions": ['
    assert (
        '    {"tenant": "acme", "role": "viewer", "user": "' + USER_ID + '", "valid_from": null, '
        '"valid_until": "2027-01-01T00:00:00.250000Z"},' in text.splitlines()
    )


def test_export_of_an_empty_database_is_an_empty_policy():
    assert policy_dumps(policy_export()) == (
        '{\n  "permissions": [],\n  "audiences": [],\n  "roles": [],\n  "tenants": [],\n  "grants": []\n}\n'
    )


def test_export_refuses_a_grant_it_cannot_write_unambiguously():
    policy_import(document=canonical())
    # The portal refuses this too; rows written around it must not be exported as something else.
    acme = Tenant.objects.get(slug="acme")
    Role.objects.create(slug="editor-x", name="x")
    Grant.objects.create(
        tenant=acme, role=Role.objects.get(slug="editor-x"), subject_type="user", subject_id=USER_ID
    )
    Role.objects.create(slug="editor-x", name="acme's", tenant=acme)

    with pytest.raises(PolicyError) as caught:
        policy_export()

    assert "uses the global role 'editor-x', but tenant 'acme' has its own role" in caught.value.errors[0]


# --- the commands -----------------------------------------------------------------------------


def run(*args, stdin: str | None = None) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    options = {"stdout": out, "stderr": err}
    if stdin is not None:
        options["stdin"] = io.StringIO(stdin)
    call_command(*args, **options)
    return out.getvalue(), err.getvalue()


def test_import_policy_reads_a_file_and_prints_the_report(tmp_path):
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(design_example()))

    out, _ = run("import_policy", str(path))

    assert "grants              2        0        0          0" in out
    assert "Imported: 6 changes." in out
    assert Grant.objects.count() == 2


def test_import_policy_reads_stdin_and_dry_runs():
    out, _ = run("import_policy", "-", "--dry-run", stdin=json.dumps(design_example()))

    assert "Dry run: nothing was written." in out
    assert nothing_stored()


def test_import_policy_prunes_and_records_the_actor(admin_user):
    policy_import(document=canonical())

    out, _ = run("import_policy", "-", "--prune", "--actor", "ops", stdin=json.dumps({"grants": []}))

    assert "grants              0        0        4          0" in out
    assert Grant.history.filter(history_type="-", history_user=admin_user).count() == 4


def test_import_policy_prints_progress_about_every_tenth_for_large_files():
    command = import_policy.Command()
    command.progress_from = 10
    document = design_example()
    document["grants"] = [
        {"tenant": "acme", "role": "viewer", "user": f"00000000-0000-4000-8000-{n:012x}"} for n in range(30)
    ]
    err = io.StringIO()

    call_command(command, "-", stdin=io.StringIO(json.dumps(document)), stdout=io.StringIO(), stderr=err)

    assert err.getvalue().splitlines() == ["writing grants: 30 of 30 (100%)"]


def test_import_policy_fails_with_every_error_on_stderr():
    document = design_example()
    document["grants"][0]["role"] = "viewr"
    document["grants"][1]["group"] = "nope"

    with pytest.raises(CommandError, match=r"policy not imported \(2 errors\); nothing was changed"):
        run("import_policy", "-", stdin=json.dumps(document))

    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_policy", "-", stdin=io.StringIO(json.dumps(document)), stderr=err)
    assert err.getvalue().splitlines() == [
        "grants[0]: role 'viewr' does not exist",
        "grants[1]: group 'nope' is not a GUID",
    ]
    assert nothing_stored()


def test_import_policy_names_the_line_and_column_of_malformed_json():
    with pytest.raises(CommandError, match=r"-: not valid JSON: Expecting ',' delimiter at line 2 column 17"):
        run("import_policy", "-", stdin='{"permissions": [\n  {"code": "a"} {"code": "b"}]}')


def test_import_policy_refuses_duplicate_json_keys():
    with pytest.raises(CommandError, match=r"duplicate key 'user' in a JSON object"):
        run(
            "import_policy",
            "-",
            stdin=json.dumps({"grants": [{}]}).replace("{}", '{"user": "a", "user": "b"}'),
        )


def test_import_policy_reports_a_missing_file(tmp_path):
    with pytest.raises(CommandError, match=r"cannot read it"):
        run("import_policy", str(tmp_path / "absent.json"))


def test_import_policy_refuses_an_unknown_actor():
    with pytest.raises(CommandError, match=r"--actor: no user 'nobody'"):
        run("import_policy", "-", "--actor", "nobody", stdin="{}")


def test_export_policy_writes_stdout_by_default():
    policy_import(document=canonical())

    out, _ = run("export_policy")

    assert out == policy_dumps(canonical())


def test_export_policy_writes_a_file_that_imports_as_a_no_op(tmp_path):
    policy_import(document=design_example())
    path = tmp_path / "out.json"

    run("export_policy", str(path))
    out, _ = run("import_policy", str(path))

    assert "No changes: the database already matches the file." in out
