"""Search latency per question over a large catalogue, the model's load time and the memory it adds.

The catalogue is the labelled cases' policy (tests/authz/search_cases.json) plus, by default,
10,000 each of principals with labels, roles and permissions (200 tenants, 50 audiences), written on a fresh
database ``test_<name>`` created from DATABASE_URL (default: a SQLite file) and dropped at the end.
Every labelled question is then asked ``--rounds`` times through ``search_interpret`` (the
fingerprint query, the kept matcher, the interpretation), as a platform admin and as a tenant
administrator, in both matching modes; the first question of a mode also builds its matcher, which
is timed on its own. Memory is the process's resident set (VmRSS) before and after the model loads.

    .venv/bin/python bench/search.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/h15search .venv/bin/python bench/search.py --size 10000
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "true")

FIRST = "ada alan anna ben carla dan dora emil eva finn gina hugo ida ivan jana karl lena liam mara nils"
LAST = "berg costa diaz eklund fischer garcia hansen ito jensen kovacs lopez meyer novak olsen petrov"
VERBS = "read write approve delete export import list create update archive restore review sign audit"
NOUNS = (
    "orders invoices reports payments shipments contracts tickets assets accounts budgets claims "
    "documents inventory customers suppliers projects timesheets vehicles devices licences"
)
TEAMS = "finance sales support logistics legal marketing hr security operations research"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def catalogue_fill(size: int, seed: int = 7) -> None:
    """``size`` principals with labels, roles and permissions, over 200 tenants and 50 audiences."""
    from accounts.models import Principal
    from authz.models import Audience, Grant, Permission, Role, SubjectLabel, Tenant
    from tests.support.search_cases import PROVIDER

    rng = random.Random(seed)
    verbs, nouns, teams = VERBS.split(), NOUNS.split(), TEAMS.split()
    first, last = FIRST.split(), LAST.split()
    tenants = Tenant.objects.bulk_create(
        Tenant(slug=f"bench-{n:03d}", name=f"Bench Tenant {n}") for n in range(200)
    )
    permissions = Permission.objects.bulk_create(
        Permission(
            code=f"{nouns[n % len(nouns)]}{n // len(nouns)}.{verbs[n % len(verbs)]}",
            description=f"{verbs[n % len(verbs)].title()} {nouns[n % len(nouns)]} of unit {n}",
        )
        for n in range(size)
    )
    roles = Role.objects.bulk_create(
        Role(
            slug=f"{teams[n % len(teams)]}-{nouns[n % len(nouns)]}-{n}",
            name=f"{teams[n % len(teams)].title()} {nouns[n % len(nouns)]} keeper {n}",
            tenant=tenants[n % len(tenants)] if n % 2 else None,
        )
        for n in range(size)
    )
    links = Role.permissions.through
    links.objects.bulk_create(
        links(role_id=role.pk, permission_id=permission.pk)
        for role in roles
        for permission in rng.sample(permissions, 3)
    )
    for n in range(50):
        audience = Audience.objects.create(
            identifier=f"api://bench-{nouns[n % len(nouns)]}-{n}", name=f"Bench {n} API"
        )
        audience.permissions.set(rng.sample(permissions, 40))
    subjects = [f"{n:08x}-0000-4000-8000-{n:012x}" for n in range(size)]
    Principal.objects.bulk_create(Principal(provider=PROVIDER, subject=s) for s in subjects)
    SubjectLabel.objects.bulk_create(
        SubjectLabel(
            provider=PROVIDER,
            subject_type="user",
            subject_id=s,
            label=f"{rng.choice(first).title()} {rng.choice(last).title()} {n}",
        )
        for n, s in enumerate(subjects)
    )
    Grant.objects.bulk_create(
        Grant(
            tenant=tenants[n % len(tenants)],
            role=roles[(n * 2) % len(roles)],  # global roles: usable in every tenant
            subject_type="user",
            provider=PROVIDER,
            subject_id=s,
        )
        for n, s in enumerate(subjects)
    )


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def timed_questions(
    tenant_ids: frozenset[int] | None, questions: list[str], rounds: int
) -> tuple[float, list[float]]:
    from authz.search.portal import search_interpret

    now = datetime(2027, 1, 10, 9, tzinfo=UTC)
    started = time.perf_counter()
    search_interpret(tenant_ids=tenant_ids, question=questions[0], now=now)  # builds the matcher
    build = time.perf_counter() - started
    latencies = []
    for _ in range(rounds):
        for question in questions:
            started = time.perf_counter()
            search_interpret(tenant_ids=tenant_ids, question=question, now=now)
            latencies.append((time.perf_counter() - started) * 1000)
    return build, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size", type=int, default=10_000, help="principals (labelled), roles and permissions"
    )
    parser.add_argument("--rounds", type=int, default=3, help="times each labelled question is asked")
    parser.add_argument("--keepdb", action="store_true")
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    from authz.models import Tenant
    from authz.search import catalogue, model
    from tests.support.search_cases import search_cases, search_catalogue_load

    settings.ALLOWED_HOSTS = ["*"]
    test_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        started = time.perf_counter()
        search_catalogue_load(settings)
        catalogue_fill(args.size)
        print(f"catalogue written in {time.perf_counter() - started:.1f} s on {connection.vendor}")
        questions = [case["q"] for case in search_cases()["search"]]
        acme = frozenset({Tenant.objects.get(slug="acme").pk})
        rows = []
        settings.PORTAL_SEARCH_MATCHING = "lexical"
        for scope, ids in (("platform admin", None), ("tenant admin", acme)):
            build, latencies = timed_questions(ids, questions, args.rounds)
            rows.append(("lexical", scope, build, latencies))
        before = rss_mb()
        started = time.perf_counter()
        loaded = model.model_get()
        load_seconds = time.perf_counter() - started
        after = rss_mb()
        if loaded is not None:
            settings.PORTAL_SEARCH_MATCHING = "model"
            catalogue.searchable_forget()
            for scope, ids in (("platform admin", None), ("tenant admin", acme)):
                build, latencies = timed_questions(ids, questions, args.rounds)
                rows.append(("model", scope, build, latencies))
        print()
        print(
            f"{args.size:,} labelled principals, {args.size:,} roles, {args.size:,} permissions; "
            f"{len(questions)} questions x {args.rounds} rounds per row"
        )
        print()
        print("| mode | scope | matcher built (s) | p50 ms | p95 ms | max ms |")
        print("|---|---|---:|---:|---:|---:|")
        for mode, scope, build, latencies in rows:
            print(
                f"| {mode} | {scope} | {build:.2f} | {statistics.median(latencies):.2f} "
                f"| {percentile(latencies, 0.95):.2f} | {max(latencies):.2f} |"
            )
        print()
        if loaded is None:
            print("model package not installed: lexical only")
        else:
            print(
                f"model load: {load_seconds:.2f} s; RSS {before:.0f} MB before, {after:.0f} MB after "
                f"(+{after - before:.0f} MB); with the catalogues built: {rss_mb():.0f} MB"
            )
    finally:
        connection.creation.destroy_test_db(test_name, verbosity=0, keepdb=args.keepdb)


if __name__ == "__main__":
    main()
