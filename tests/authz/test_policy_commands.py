"""import_policy and export_policy: files, stdin, reports and errors on the command line."""

from __future__ import annotations

import io
import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from authz.management.commands import import_policy
from authz.models import Grant
from authz.policy import policy_dumps, policy_import
from tests.support.policy import (
    PROVIDER,
    canonical,
    design_example,
    nothing_stored,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_user():
    return get_user_model().objects.create_user(username="ops", password="x")


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
        {
            "tenant": "acme",
            "role": "viewer",
            "provider": PROVIDER,
            "user": f"00000000-0000-4000-8000-{n:012x}",
        }
        for n in range(30)
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
