"""Reading and writing the stored policy for an import: a few set-based queries in, batched writes out.

Grants are written by COPY on PostgreSQL (many times faster than INSERT for large files), by the
ORM elsewhere; every write gets its django-simple-history row with one actor, reason and time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Model
from django.utils import timezone
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from authz.models import Audience, Feature, Grant, Permission, Role, Tenant
from authz.policy.document import KINDS, GrantSpec, Progress, RoleKey
from authz.policy.planner import PolicyPlan, StoredGrant, StoredPolicy

CHANGE_REASON = "import_policy"
# django-simple-history's change reason column holds 100 characters.
CHANGE_REASON_MAX = 100


def change_reason(source: str | None) -> str:
    """The history's reason for an import: ``import_policy``, then the file's name when there is one.

    Only the file's own name, not its directory: the history is read by every admin of the row.
    """
    name = source.replace("\\", "/").rsplit("/", 1)[-1] if source else ""
    if source == "-":
        name = "standard input"
    return f"{CHANGE_REASON}: {name}"[:CHANGE_REASON_MAX] if name else CHANGE_REASON


BATCH_SIZE = 2000
# The models that carry a set of permissions, written the same way.
_WithPermissions = TypeVar("_WithPermissions", Audience, Role)


def _feature_list(value: object) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def stored_policy_load() -> tuple[StoredPolicy, dict[str, dict]]:
    """Everything stored, in a few queries: the StoredPolicy and natural key -> id maps."""
    ids: dict[str, dict] = {kind: {} for kind in KINDS}
    catalogue = {}
    for pk, code, description in Feature.objects.values_list("id", "code", "description"):
        catalogue[code] = description
        ids["features"][code] = pk
    permission_codes: dict[int, str] = {}
    permissions = {}
    for pk, code, description, requires_feature in Permission.objects.values_list(
        "id", "code", "description", "requires_feature"
    ):
        permissions[code] = (description, requires_feature or None)
        ids["permissions"][code] = pk
        permission_codes[pk] = code
    tenant_slugs: dict[int, str] = {}
    tenants = {}
    for pk, slug, name, status, features in Tenant.objects.values_list(
        "id", "slug", "name", "status", "features"
    ):
        tenants[slug] = (name, status, _feature_list(features))
        ids["tenants"][slug] = pk
        tenant_slugs[pk] = slug

    audience_permissions: dict[int, set[str]] = {}
    for audience_id, permission_id in Audience.permissions.through.objects.values_list(
        "audience_id", "permission_id"
    ):
        audience_permissions.setdefault(audience_id, set()).add(permission_codes[permission_id])
    audiences = {}
    for pk, identifier, name in Audience.objects.values_list("id", "identifier", "name"):
        audiences[identifier] = (name, frozenset(audience_permissions.get(pk, ())))
        ids["audiences"][identifier] = pk

    role_permissions: dict[int, set[str]] = {}
    for role_id, permission_id in Role.permissions.through.objects.values_list("role_id", "permission_id"):
        role_permissions.setdefault(role_id, set()).add(permission_codes[permission_id])
    roles = {}
    role_keys: dict[int, RoleKey] = {}
    for pk, slug, name, tenant_id in Role.objects.values_list("id", "slug", "name", "tenant_id"):
        key = (tenant_slugs[tenant_id] if tenant_id else None, slug)
        roles[key] = (name, frozenset(role_permissions.get(pk, ())))
        ids["roles"][key] = pk
        role_keys[pk] = key

    grants = {}
    for pk, tenant_id, role_id, subject_type, provider, subject_id, valid_from, valid_until in (
        Grant.objects.order_by()
        .values_list(
            "id",
            "tenant_id",
            "role_id",
            "subject_type",
            "provider",
            "subject_id",
            "valid_from",
            "valid_until",
        )
        .iterator(chunk_size=10000)
    ):
        grant_key = (tenant_slugs[tenant_id], role_keys[role_id], subject_type, provider, subject_id)
        grants[grant_key] = StoredGrant(pk, valid_from, valid_until)
    stored = StoredPolicy(catalogue, permissions, audiences, roles, tenants, grants)
    return stored, ids


def _chunks(items: Sequence, size: int = BATCH_SIZE) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class PolicyWriter:
    """Applies a plan: set-based writes and their history rows, all with one actor, reason and time."""

    def __init__(
        self,
        plan: PolicyPlan,
        ids: dict[str, dict],
        actor: Any,
        progress: Progress | None,
        reason: str = CHANGE_REASON,
    ) -> None:
        self.plan, self.ids, self.progress, self.reason = plan, ids, progress, reason
        self.history = {
            "default_user": actor,
            "default_change_reason": reason,
            "default_date": timezone.now(),
        }
        self.actor = actor

    def write(self) -> None:
        self.features()
        self.permissions()
        self.tenants()
        self.with_permissions(Audience, "audiences", "identifier", lambda a: {"identifier": a.identifier})
        self.with_permissions(
            Role, "roles", "key", lambda r: {"slug": r.slug, "tenant_id": self.tenant_id(r.tenant)}
        )
        self.grants()

    def tenant_id(self, slug: str | None) -> int | None:
        return None if slug is None else self.ids["tenants"][slug]

    def features(self) -> None:
        creates = [Feature(code=f.code, description=f.description) for f in self.plan.creates["features"]]
        for row in bulk_create_with_history(creates, Feature, batch_size=BATCH_SIZE, **self.history):
            self.ids["features"][row.code] = row.pk
        updates = [
            Feature(id=self.ids["features"][f.code], code=f.code, description=f.description)
            for f in self.plan.updates["features"]
        ]
        bulk_update_with_history(updates, Feature, ["description"], batch_size=BATCH_SIZE, **self.history)

    def permissions(self) -> None:
        creates = [
            Permission(code=p.code, description=p.description, requires_feature=p.requires_feature or "")
            for p in self.plan.creates["permissions"]
        ]
        for row in bulk_create_with_history(creates, Permission, batch_size=BATCH_SIZE, **self.history):
            self.ids["permissions"][row.code] = row.pk
        updates = [
            Permission(
                id=self.ids["permissions"][p.code],
                code=p.code,
                description=p.description,
                requires_feature=p.requires_feature or "",
            )
            for p in self.plan.updates["permissions"]
        ]
        bulk_update_with_history(
            updates, Permission, ["description", "requires_feature"], batch_size=BATCH_SIZE, **self.history
        )

    def tenants(self) -> None:
        # created_at is not in the file: updates keep it, so read the rows they change.
        creates = [
            Tenant(slug=t.slug, name=t.name, status=t.status, features=list(t.features))
            for t in self.plan.creates["tenants"]
        ]
        for row in bulk_create_with_history(creates, Tenant, batch_size=BATCH_SIZE, **self.history):
            self.ids["tenants"][row.slug] = row.pk
        wanted = {t.slug: t for t in self.plan.updates["tenants"]}
        updates = list(Tenant.objects.filter(slug__in=wanted))
        for row in updates:
            spec = wanted[row.slug]
            row.name, row.status, row.features = spec.name, spec.status, list(spec.features)
        bulk_update_with_history(
            updates, Tenant, ["name", "status", "features"], batch_size=BATCH_SIZE, **self.history
        )

    def with_permissions(
        self, model: type[_WithPermissions], kind: str, key_attr: str, natural: Callable[[Any], dict]
    ) -> None:
        """Audiences and roles: rows, their permission links, then one history row each with its links."""
        created = [model(name=spec.name, **natural(spec)) for spec in self.plan.creates[kind]]
        model.objects.bulk_create(created, batch_size=BATCH_SIZE)
        for spec, row in zip(self.plan.creates[kind], created, strict=True):
            self.ids[kind][getattr(spec, key_attr)] = row.pk
        changed_specs = {self.ids[kind][getattr(spec, key_attr)]: spec for spec in self.plan.updates[kind]}
        updated = list(model.objects.filter(pk__in=changed_specs))
        for row in updated:
            row.name = changed_specs[row.pk].name
        model.objects.bulk_update(updated, ["name"], batch_size=BATCH_SIZE)

        through = model.permissions.through
        owner = model.permissions.field.m2m_field_name() + "_id"
        wanted = {
            self.ids[kind][getattr(spec, key_attr)]: {
                self.ids["permissions"][code] for code in spec.permissions
            }
            for spec in [*self.plan.creates[kind], *self.plan.updates[kind]]
        }
        current: dict[int, set[int]] = {pk: set() for pk in wanted}
        stale: list[int] = []
        for link_id, owner_id, permission_id in through.objects.filter(
            **{f"{owner}__in": wanted}
        ).values_list("id", owner, "permission_id"):
            if permission_id in wanted[owner_id]:
                current[owner_id].add(permission_id)
            else:
                stale.append(link_id)
        for batch in _chunks(stale):
            through.objects.filter(pk__in=batch).delete()
        through.objects.bulk_create(
            [
                through(**{owner: owner_id, "permission_id": permission_id})
                for owner_id, permissions in wanted.items()
                for permission_id in sorted(permissions - current[owner_id])
            ],
            batch_size=BATCH_SIZE,
        )
        history = model.history
        # chain, not [*a, *b]: mypy loses track of locals under a star expression in a function with
        # a constrained TypeVar (python/mypy#21693).
        records = list(
            chain(
                history.bulk_history_create(created, batch_size=BATCH_SIZE, **self.history),
                history.bulk_history_create(updated, batch_size=BATCH_SIZE, update=True, **self.history),
            )
        )
        link_history = history.model.permissions.model  # the historical m2m model
        links = through.objects.filter(**{f"{owner}__in": wanted}).values_list("id", owner, "permission_id")
        by_owner: dict[int, list[tuple[int, int]]] = {}
        for link_id, owner_id, permission_id in links:
            by_owner.setdefault(owner_id, []).append((link_id, permission_id))
        link_history.objects.bulk_create(
            [
                link_history(history=record, id=link_id, permission_id=permission_id, **{owner: record.id})
                for record in records
                for link_id, permission_id in by_owner.get(record.id, ())
            ],
            batch_size=BATCH_SIZE,
        )

    def grants(self) -> None:
        creates = self.plan.creates["grants"]
        updates = self.plan.updates["grants"]
        deletes = self.plan.grant_deletes
        total, done = len(creates) + len(updates) + len(deletes), 0
        copy = grants_copy_supported()
        for batch in _chunks(creates, 5 * BATCH_SIZE):
            if copy:
                self.grants_copy(batch)
            else:
                rows = [self.grant_row(spec) for spec in batch]
                bulk_create_with_history(rows, Grant, batch_size=BATCH_SIZE, **self.history)
            done += len(batch)
            self.report_progress(done, total)
        if updates:
            by_id = {self.grant_id(spec): spec for spec in updates}
            for batch in _chunks(list(by_id), 5 * BATCH_SIZE):
                if copy:
                    self.grants_update_copy([(pk, by_id[pk]) for pk in batch])
                    done += len(batch)
                    self.report_progress(done, total)
                    continue
                rows = list(Grant.objects.filter(pk__in=batch))
                for row in rows:
                    spec = by_id[row.pk]
                    row.valid_from, row.valid_until = spec.valid_from, spec.valid_until
                bulk_update_with_history(
                    rows, Grant, ["valid_from", "valid_until"], batch_size=500, **self.history
                )
                done += len(batch)
                self.report_progress(done, total)
        for batch in _chunks(deletes, 5 * BATCH_SIZE):
            self.grants_delete(batch, copy=copy)
            done += len(batch)
            self.report_progress(done, total)

    def grant_id(self, spec: GrantSpec) -> int:
        return self.plan.grant_stored_ids[spec.index]

    def grant_row(self, spec: GrantSpec) -> Grant:
        _tenant, role_key, subject_type, provider, subject_id = self.plan.grant_keys[spec.index]
        return Grant(
            tenant_id=self.ids["tenants"][spec.tenant],
            role_id=self.ids["roles"][role_key],
            subject_type=subject_type,
            provider=provider,
            subject_id=subject_id,
            valid_from=spec.valid_from,
            valid_until=spec.valid_until,
            granted_by=self.actor,
        )

    def grants_copy(self, batch: Sequence[GrantSpec]) -> None:
        """PostgreSQL: grants and their '+' history rows by COPY, with ids drawn from the sequence."""
        actor_id = self.actor.pk if self.actor is not None else None
        now = self.history["default_date"]
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [Grant._meta.db_table, len(batch)],
            )
            ids = [pk for (pk,) in cursor.fetchall()]
            rows = []
            for pk, spec in zip(ids, batch, strict=True):
                _tenant, role_key, subject_type, provider, subject_id = self.plan.grant_keys[spec.index]
                tenant_id, role_id = self.ids["tenants"][spec.tenant], self.ids["roles"][role_key]
                subject = (subject_type, provider, subject_id)
                valid = (spec.valid_from, spec.valid_until)
                rows.append((pk, tenant_id, role_id, *subject, *valid, actor_id, "", now))
            _copy(cursor, Grant, GRANT_COLUMNS, rows)
            _copy(
                cursor,
                Grant.history.model,
                HISTORY_COLUMNS,
                [(*r, now, self.reason, "+", actor_id) for r in rows],
            )

    def grants_update_copy(self, batch: Sequence[tuple[int, GrantSpec]]) -> None:
        """PostgreSQL: one UPDATE … FROM (VALUES …) per chunk, then the '~' history rows by COPY."""
        actor_id = self.actor.pk if self.actor is not None else None
        now = self.history["default_date"]
        table = connection.ops.quote_name(Grant._meta.db_table)
        with connection.cursor() as cursor:
            for chunk in _chunks(batch, 1000):
                values = ", ".join(["(%s::bigint, %s::timestamptz, %s::timestamptz)"] * len(chunk))
                params = [value for pk, spec in chunk for value in (pk, spec.valid_from, spec.valid_until)]
                cursor.execute(
                    f"UPDATE {table} AS g SET valid_from = v.valid_from, valid_until = v.valid_until"  # noqa: S608
                    f" FROM (VALUES {values}) AS v (id, valid_from, valid_until) WHERE g.id = v.id",
                    params,
                )
            rows = (
                Grant.objects.filter(pk__in=[pk for pk, _spec in batch])
                .order_by()
                .values_list(*GRANT_COLUMNS)
            )
            _copy(
                cursor,
                Grant.history.model,
                HISTORY_COLUMNS,
                [(*r, now, self.reason, "~", actor_id) for r in rows],
            )

    def grants_delete(self, ids: Sequence[int], *, copy: bool) -> None:
        """Delete grants, each with a '-' history row (QuerySet.delete adds them one by one, no actor)."""
        history = Grant.history.model
        if copy:
            actor_id = self.actor.pk if self.actor is not None else None
            now = self.history["default_date"]
            rows = Grant.objects.filter(pk__in=ids).order_by().values_list(*GRANT_COLUMNS)
            with connection.cursor() as cursor:
                _copy(cursor, history, HISTORY_COLUMNS, [(*r, now, self.reason, "-", actor_id) for r in rows])
        else:
            self.grants_history_deleted(ids)
        table = connection.ops.quote_name(Grant._meta.db_table)
        with connection.cursor() as cursor:
            for batch in _chunks(ids, 500):
                placeholders = ", ".join(["%s"] * len(batch))
                cursor.execute(f"DELETE FROM {table} WHERE id IN ({placeholders})", list(batch))  # noqa: S608

    def grants_history_deleted(self, ids: Sequence[int]) -> None:
        history = Grant.history.model
        tracked = [f.attname for f in history.tracked_fields]
        rows = list(Grant.objects.filter(pk__in=ids).values(*tracked))
        history.objects.bulk_create(
            [
                history(
                    history_type="-",
                    history_date=self.history["default_date"],
                    history_user=self.actor,
                    history_change_reason=self.reason,
                    **row,
                )
                for row in rows
            ],
            batch_size=BATCH_SIZE,
        )

    def report_progress(self, done: int, total: int) -> None:
        if self.progress:
            self.progress("writing grants", done, total)


# The columns COPY writes. If the models gain a column, grants_copy_supported turns COPY off and the ORM path
# (bulk_create_with_history) takes over, so history never silently misses a field.
GRANT_COLUMNS = (
    "id",
    "tenant_id",
    "role_id",
    "subject_type",
    "provider",
    "subject_id",
    "valid_from",
    "valid_until",
    "granted_by_id",
    "reason",
    "created_at",
)
HISTORY_COLUMNS = (*GRANT_COLUMNS, "history_date", "history_change_reason", "history_type", "history_user_id")


def grants_copy_supported() -> bool:
    """Whether grants can be written by COPY: PostgreSQL, and the tables hold exactly those columns."""
    if connection.vendor != "postgresql":
        return False
    history = Grant.history.model
    return {f.column for f in Grant._meta.concrete_fields} == set(GRANT_COLUMNS) and {
        f.column for f in history._meta.concrete_fields
    } == {*HISTORY_COLUMNS, "history_id"}


def _copy(cursor: Any, model: type[Model], columns: Sequence[str], rows: Iterable[tuple]) -> None:
    """COPY rows into a model's table (psycopg 3), many times faster than INSERT for large batches."""
    quote = connection.ops.quote_name
    names = ", ".join(quote(column) for column in columns)
    # The raw psycopg cursor bypasses Django's error translation: restore it (IntegrityError et al.).
    with (
        connection.wrap_database_errors,
        cursor.cursor.copy(f"COPY {quote(model._meta.db_table)} ({names}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)
