"""The beat schedule of the key tasks, seeded from KEY_ROTATION_CHECK_INTERVAL into the portal.

The rows are created when missing and never changed afterwards: the portal is where operators see
and change the schedule, and a redeploy must not silently undo a change made there (for instance an
interval shortened during an incident). A setting that disagrees with the row is logged at every
``migrate`` instead; to apply a new setting, edit the task in the portal or delete it and migrate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connections, transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

logger = logging.getLogger(__name__)

ROTATE_TASK = "keys.rotate"
PUBLISH_TASK = "keys.publish_jwks"


@dataclass(frozen=True)
class ScheduledTask:
    """One periodic task this app needs: its portal name, the Celery task and its description."""

    name: str
    task: str
    description: str


SCHEDULED_TASKS = (
    ScheduledTask(
        name="Rotate signing keys",
        task=ROTATE_TASK,
        description="Runs the key rotation policy: bootstrap, successor, activation, retirement.",
    ),
    ScheduledTask(
        name="Publish the JWKS",
        task=PUBLISH_TASK,
        description="Safety net: re-renders the JWKS document if the key set changed without it.",
    ),
)


def rotation_schedule_ensure(*, using: str = "default") -> list[str]:
    """Create the missing key tasks every KEY_ROTATION_CHECK_INTERVAL seconds; return their names."""
    every = settings.KEY_ROTATION_CHECK_INTERVAL
    created: list[str] = []
    with transaction.atomic(using=using):
        for scheduled in SCHEDULED_TASKS:
            existing = PeriodicTask.objects.using(using).filter(name=scheduled.name).first()
            if existing is not None:
                _warn_if_diverged(existing, every=every)
                continue
            interval = _interval(every=every, using=using)
            # A message older than one interval is dropped: the next run does the same work, so a
            # worker that was down for hours does not replay a backlog of identical rotations.
            PeriodicTask.objects.using(using).create(
                name=scheduled.name,
                task=scheduled.task,
                interval=interval,
                expire_seconds=every,
                description=scheduled.description,
            )
            created.append(scheduled.name)
    for name in created:
        logger.info("scheduled %r every %s s (KEY_ROTATION_CHECK_INTERVAL)", name, every)
    return created


def _interval(*, every: int, using: str) -> IntervalSchedule:
    interval = (
        IntervalSchedule.objects.using(using)
        .filter(every=every, period=IntervalSchedule.SECONDS)
        .order_by("pk")
        .first()
    )
    if interval is None:
        interval = IntervalSchedule.objects.using(using).create(every=every, period=IntervalSchedule.SECONDS)
    return interval


def _warn_if_diverged(task: PeriodicTask, *, every: int) -> None:
    schedule = task.interval
    seconds = None
    if schedule is not None:
        seconds = int(timedelta(**{schedule.period: schedule.every}).total_seconds())
    if seconds != every or not task.enabled:
        logger.warning(
            "periodic task %r runs every %s s%s, KEY_ROTATION_CHECK_INTERVAL says %s s: "
            "kept as changed in the portal (delete it and migrate to reseed it from the setting)",
            task.name,
            seconds,
            "" if task.enabled else " but is disabled",
            every,
        )


def schedule_after_migrate(*, using: str = "default", **kwargs: object) -> None:
    """post_migrate receiver: seed the schedule once django-celery-beat's tables exist."""
    tables = connections[using].introspection.table_names()
    if PeriodicTask._meta.db_table in tables and IntervalSchedule._meta.db_table in tables:
        rotation_schedule_ensure(using=using)
