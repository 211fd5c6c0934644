"""The beat schedule of the key tasks: seeded from the setting, then owned by the portal."""

from __future__ import annotations

import logging

import pytest
from django.core.management import call_command
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from keys.schedules import PUBLISH_TASK, ROTATE_TASK, rotation_schedule_ensure

pytestmark = pytest.mark.django_db


def _key_tasks() -> dict[str, PeriodicTask]:
    return {task.task: task for task in PeriodicTask.objects.filter(task__in=[ROTATE_TASK, PUBLISH_TASK])}


def _seconds(task: PeriodicTask) -> int:
    assert task.interval.period == IntervalSchedule.SECONDS
    return task.interval.every


def test_migrate_schedules_rotation_and_publication_every_check_interval(settings):
    tasks = _key_tasks()

    assert set(tasks) == {ROTATE_TASK, PUBLISH_TASK}
    for task in tasks.values():
        assert task.enabled
        assert _seconds(task) == settings.KEY_ROTATION_CHECK_INTERVAL
        assert task.expire_seconds == settings.KEY_ROTATION_CHECK_INTERVAL


def test_it_recreates_deleted_tasks_from_the_setting(settings):
    PeriodicTask.objects.filter(task__in=[ROTATE_TASK, PUBLISH_TASK]).delete()
    settings.KEY_ROTATION_CHECK_INTERVAL = 120

    created = rotation_schedule_ensure()

    assert len(created) == 2
    assert {_seconds(task) for task in _key_tasks().values()} == {120}


def test_running_it_twice_creates_nothing_more():
    before = PeriodicTask.objects.count(), IntervalSchedule.objects.count()

    assert rotation_schedule_ensure() == []
    assert rotation_schedule_ensure() == []

    assert (PeriodicTask.objects.count(), IntervalSchedule.objects.count()) == before


def test_it_keeps_an_interval_an_operator_changed_and_says_so(settings, caplog):
    operator_interval = IntervalSchedule.objects.create(every=45, period=IntervalSchedule.SECONDS)
    rotate = _key_tasks()[ROTATE_TASK]
    rotate.interval = operator_interval
    rotate.save()

    with caplog.at_level(logging.WARNING, logger="keys.schedules"):
        call_command("migrate", verbosity=0)

    assert _seconds(_key_tasks()[ROTATE_TASK]) == 45
    assert f"says {settings.KEY_ROTATION_CHECK_INTERVAL} s" in caplog.text


def test_it_leaves_a_task_an_operator_disabled_disabled(caplog):
    PeriodicTask.objects.filter(task=ROTATE_TASK).update(enabled=False)

    with caplog.at_level(logging.WARNING, logger="keys.schedules"):
        rotation_schedule_ensure()

    assert not _key_tasks()[ROTATE_TASK].enabled
    assert "disabled" in caplog.text
