"""Grants per second of import_policy on PostgreSQL: a first import, the idempotent re-import, a prune.

Generates a policy with N grants (default 100,000) over a realistic shape (200 tenants, 12 global
roles and one own role per tenant, 40 permissions, 6 audiences; 80% user grants, 20% group grants,
a third with an end date), then times ``policy_import`` on a fresh database ``test_<name>`` that it
creates from DATABASE_URL, migrates and drops at the end (the named database itself is not touched).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/issuer_policy .venv/bin/python bench/import_policy.py
    ... bench/import_policy.py --grants 20000 --keepdb
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "true")
# Grants name their identity provider: the one Entra directory this bench trusts.
DIRECTORY = "11111111-1111-4111-8111-111111111111"
os.environ.setdefault("ENTRA_TENANT_ID", DIRECTORY)

TENANTS = 200
GLOBAL_ROLES = 12
PERMISSIONS = 40
AUDIENCES = 6


def policy_generate(grants: int, seed: int = 7) -> dict:
    """A policy document with ``grants`` distinct grants, reproducible for a seed."""
    rng = random.Random(seed)
    codes = [f"svc{n % 8}.action{n}" for n in range(PERMISSIONS)]
    permissions = [
        {
            "code": code,
            "description": f"Action {n}",
            "requires_feature": "exports" if n % 10 == 0 else None,
        }
        for n, code in enumerate(codes)
    ]
    audiences = [
        {"id": f"api://service-{n}", "name": f"Service {n}", "permissions": sorted(rng.sample(codes, 12))}
        for n in range(AUDIENCES)
    ]
    tenants = [
        {
            "slug": f"tenant-{n:04d}",
            "name": f"Tenant {n}",
            "status": "active" if n % 25 else "suspended",
            "features": ["exports"] if n % 3 == 0 else [],
        }
        for n in range(TENANTS)
    ]
    roles = [
        {
            "slug": f"role-{n}",
            "name": f"Role {n}",
            "permissions": sorted(rng.sample(codes, 6)),
            "tenant": None,
        }
        for n in range(GLOBAL_ROLES)
    ] + [
        {
            "slug": "local-admin",
            "name": "Local admin",
            "permissions": sorted(rng.sample(codes, 8)),
            "tenant": t["slug"],
        }
        for t in tenants
    ]
    role_slugs = [r["slug"] for r in roles[:GLOBAL_ROLES]] + ["local-admin"]
    now = datetime(2026, 1, 1, tzinfo=UTC)
    rows: list[dict[str, object]] = []
    seen: set[tuple[object, ...]] = set()
    while len(rows) < grants:
        tenant = tenants[rng.randrange(TENANTS)]["slug"]
        role = role_slugs[rng.randrange(len(role_slugs))]
        subject = "group" if rng.random() < 0.2 else "user"
        subject_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        key = (tenant, role, subject, subject_id)
        if key in seen:
            continue
        seen.add(key)
        until = now + timedelta(days=rng.randrange(30, 900)) if rng.random() < 0.33 else None
        rows.append(
            {
                "tenant": tenant,
                "role": role,
                "provider": DIRECTORY,
                subject: subject_id,
                "valid_from": None,
                "valid_until": until.strftime("%Y-%m-%dT%H:%M:%SZ") if until else None,
            }
        )
    return {
        "permissions": permissions,
        "audiences": audiences,
        "roles": roles,
        "tenants": tenants,
        "grants": rows,
    }


def timed(label: str, grants: int, path: Path, *options: str) -> None:
    """Run the import_policy command on a file (JSON decoding included) and print a table row."""
    from django.core.management import call_command

    out, err = io.StringIO(), io.StringIO()
    started = time.perf_counter()
    call_command("import_policy", str(path), *options, stdout=out, stderr=err)
    seconds = time.perf_counter() - started
    counts = next(line.split()[1:] for line in out.getvalue().splitlines() if line.startswith("grants "))
    print(f"| {label} | {grants:,} | {seconds:.2f} | {grants / seconds:,.0f} | {' / '.join(counts)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grants", type=int, default=100_000)
    parser.add_argument(
        "--prune-fraction", type=float, default=0.1, help="share of grants the prune run drops"
    )
    parser.add_argument("--keepdb", action="store_true", help="keep test_<name> afterwards")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("Set DATABASE_URL=postgres://… (the benchmark measures PostgreSQL).")

    import django

    django.setup()
    from django.db import connection

    from authz.policy import policy_dumps, policy_export

    n = args.grants
    document = policy_generate(n)
    kept = dict(document, grants=document["grants"][: int(n * (1 - args.prune_fraction))])
    extended = dict(document, grants=[dict(g) for g in document["grants"]])
    for grant in extended["grants"][::10]:  # every tenth grant gets a new end date
        grant["valid_until"] = "2031-01-01T00:00:00Z"
    with tempfile.TemporaryDirectory(prefix="bench-policy-") as folder:
        full, pruned = Path(folder) / "policy.json", Path(folder) / "pruned.json"
        changed = Path(folder) / "changed.json"
        full.write_text(json.dumps(document))
        changed.write_text(json.dumps(extended))
        pruned.write_text(json.dumps(kept))
        test_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
        try:
            size = full.stat().st_size / 1e6
            tenants, roles = len(document["tenants"]), len(document["roles"])
            print(f"{n:,} grants ({size:.1f} MB of JSON), {tenants} tenants, {roles} roles;")
            print(f"PostgreSQL {connection.get_database_version()[0]}, database {test_name}\n")
            print("| run | grants in file | seconds | grants/s | created / updated / deleted / unchanged |")
            print("|---|---:|---:|---:|---|")
            timed("first import", n, full)
            timed("re-import (no changes)", n, full)
            timed("dry run (no changes)", n, full, "--dry-run")
            timed("every tenth end date changed", n, changed)
            gone = f"--prune ({args.prune_fraction:.0%} of grants gone)"
            timed(gone, len(kept["grants"]), pruned, "--prune")
            timed("re-import after the prune", len(kept["grants"]), pruned)
            started = time.perf_counter()
            exported = policy_dumps(policy_export())
            seconds, rows = time.perf_counter() - started, len(kept["grants"])
            label = f"export_policy ({len(exported) / 1e6:.1f} MB)"
            print(f"| {label} | {rows:,} | {seconds:.2f} | {rows / seconds:,.0f} | |")
        finally:
            connection.creation.destroy_test_db(test_name, verbosity=0, keepdb=args.keepdb)


if __name__ == "__main__":
    main()
