"""The key tasks: in process, and through a real Celery worker on Redis sharing the test database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone
from kombu import Connection

from keys.models import JwksDocument, SigningKey
from keys.selectors import signing_key_active_exists
from keys.tasks import publish_jwks, rotate

ROOT = Path(__file__).resolve().parents[2]
# Our own Redis database (the team shares one server): 12 is this suite's broker.
BROKER_DB = 12
WORKER_START_SECONDS = 60
TASK_SECONDS = 60


@pytest.mark.django_db
def test_the_rotate_task_bootstraps_a_first_key():
    rotate.apply().get()

    assert signing_key_active_exists()


@pytest.mark.django_db
def test_the_publish_task_republishes_a_lost_document():
    rotate.apply().get()
    JwksDocument.objects.all().delete()

    publish_jwks.apply().get()

    assert JwksDocument.objects.count() == 1


def _database_url() -> str:
    """The test database of this run, as the DATABASE_URL a subprocess understands."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def broker_url(redis_url: str) -> Iterator[str]:
    parts = urlsplit(redis_url)
    url = urlunsplit((parts.scheme, parts.netloc, f"/{BROKER_DB}", "", ""))
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()


@dataclass(frozen=True)
class Worker:
    """A running `celery worker` process and the file its output goes to."""

    process: subprocess.Popen
    log: Path

    def wait_for(self, condition: Callable[[], bool], seconds: float = TASK_SECONDS) -> None:
        """Poll ``condition`` until it holds; fail with the worker's log if it dies or time runs out."""
        deadline = time.monotonic() + seconds
        while not condition():
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"worker: condition not met in {seconds} s; log:\n{self.log.read_text()[-4000:]}")
            time.sleep(0.1)


@pytest.fixture
def worker(require_postgres, transactional_db, broker_url: str, tmp_path: Path) -> Iterator[Worker]:
    """A worker on the Redis broker and this run's test database (so it sees what the test sees)."""
    log = tmp_path / "worker.log"
    environment = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": broker_url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
    }
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "--pool=solo",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--loglevel=INFO",
        f"--hostname=keys-test-{os.getpid()}@%h",
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            command, cwd=ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
    running = Worker(process=process, log=log)
    try:
        # Sent before the worker declared its queue, a message could be dropped: wait until it consumes.
        running.wait_for(lambda: b" ready." in log.read_bytes(), WORKER_START_SECONDS)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _send(task, broker_url: str) -> None:
    with Connection(broker_url) as broker:
        task.apply_async(connection=broker)


@pytest.mark.postgres
@pytest.mark.redis
def test_a_worker_on_redis_runs_the_scheduled_rotation(worker: Worker, broker_url: str):
    _send(rotate, broker_url)
    worker.wait_for(signing_key_active_exists)
    first = SigningKey.objects.get(phase=SigningKey.Phase.ACTIVE)

    # The active key is now as old as the rotation interval: the next run must publish a successor.
    past = timezone.now() - timedelta(seconds=settings.KEY_ROTATION_INTERVAL)
    SigningKey.objects.filter(pk=first.pk).update(created_at=past, published_at=past, activated_at=past)
    _send(rotate, broker_url)
    worker.wait_for(lambda: SigningKey.objects.filter(phase=SigningKey.Phase.PENDING).exists())

    successor = SigningKey.objects.get(phase=SigningKey.Phase.PENDING)
    assert successor.kid != first.kid
    published = JwksDocument.objects.order_by("-version").first()
    assert first.kid in published.body and successor.kid in published.body


@pytest.mark.postgres
@pytest.mark.redis
def test_a_worker_on_redis_republishes_the_jwks(worker: Worker, broker_url: str):
    _send(rotate, broker_url)
    worker.wait_for(signing_key_active_exists)
    JwksDocument.objects.all().delete()

    _send(publish_jwks, broker_url)

    worker.wait_for(JwksDocument.objects.exists)
    kid = SigningKey.objects.get(phase=SigningKey.Phase.ACTIVE).kid
    assert kid in JwksDocument.objects.get().body
