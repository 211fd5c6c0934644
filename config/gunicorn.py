"""Production gunicorn settings, loaded by the production entry point ``python -m config.serve``.

The one place where the web server is chosen and tuned. Read from the environment: ``BIND_HOST``
(``0.0.0.0``; ``127.0.0.1`` for instances behind a proxy on the same host), ``PORT`` (8000),
``WEB_CONCURRENCY`` (workers; default 2 per core), ``GUNICORN_TIMEOUT`` (30 s),
``FORWARDED_ALLOW_IPS`` (none), ``PROMETHEUS_MULTIPROC_DIR``.

- The app is preloaded: the start-up checks (settings, ``KEY_ENCRYPTION_KEY`` opening the keys) run
  once in the master and a bad deployment exits before any worker forks, instead of every worker
  crash-looping. The master closes its database connections before each fork, so no worker shares
  a socket with it. The price: ``HUP`` does not load new code; deploy by restarting.
- gunicorn never derives the scheme from forwarded headers (``secure_scheme_headers`` is empty):
  Django alone trusts ``X-Forwarded-Proto``, and only when ``HTTPS`` is on (settings).
- The access log is one JSON line per request with the path only: never a query string, a body or
  an ``Authorization`` header.
- With ``PROMETHEUS_MULTIPROC_DIR`` set (an empty directory writable by the workers), the master
  empties it at start and drops a dead worker's live gauges, and ``/metrics`` adds every worker up.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from gunicorn.glogging import Logger

from lib.env import Env

_env = Env()

_host = _env.str("BIND_HOST", "0.0.0.0")  # noqa: S104 - every interface unless told otherwise
_port = _env.int("PORT", 8000, minimum=1, maximum=65535)
bind = f"[{_host}]:{_port}" if ":" in _host else f"{_host}:{_port}"  # an IPv6 address in brackets
workers = _env.int("WEB_CONCURRENCY", 2 * (os.cpu_count() or 1), minimum=1, maximum=64)
worker_class = "sync"  # behind a buffering proxy (load balancer): requests are short and CPU-bound
preload_app = True
timeout = _env.int("GUNICORN_TIMEOUT", 30, minimum=5, maximum=300)
graceful_timeout = 30  # in-flight exchanges finish on SIGTERM; a deploy drains instead of dropping
keepalive = 5  # longer than nothing, shorter than a load balancer's idle timeout
# Recycle workers now and then (bounded memory growth), staggered so they never restart together.
max_requests = 20_000
max_requests_jitter = 2_000
# Request limits: the exchange needs a few kilobytes of headers at most.
limit_request_line = 4096
limit_request_fields = 50
limit_request_field_size = 8190
secure_scheme_headers: dict[str, str] = {}
forwarded_allow_ips = _env.str("FORWARDED_ALLOW_IPS", "") or ""
# A control socket in the home directory would be shared by every gunicorn on the host (and is one
# more way in); manage the server with signals instead.
control_socket_disable = True
# Both logs as JSON lines on stdout/stderr, in the shape of the application's (lib.logformat).
accesslog = "-"
errorlog = "-"
logger_class = "config.gunicorn.JsonAccessLogger"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "INFO", "handlers": ["error_console"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": False},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
        "error_console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        },
    },
    "formatters": {"json": {"()": "lib.logformat.JsonFormatter"}},
}


class JsonAccessLogger(Logger):
    """gunicorn's logger with the access line as data: method, path (no query), status, size, time."""

    def access(self, resp, req, environ, request_time) -> None:
        if not self.access_log_enabled:
            return
        line = {
            "remote": environ.get("REMOTE_ADDR", "-"),
            "method": environ.get("REQUEST_METHOD", "-"),
            "path": environ.get("PATH_INFO", "-")[:512],
            "status": resp.status_code if hasattr(resp, "status_code") else str(resp.status).split()[0],
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 3),
        }
        self.access_log.info(json.dumps(line, default=str, separators=(",", ":")), extra={"structured": line})


def on_starting(server) -> None:
    """Empty the multiprocess metrics directory: values of a previous run must not be added in."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        path = Path(directory)
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True, mode=0o700)


def pre_fork(server, worker) -> None:
    """Close the connections the preloaded app opened (start-up checks): a child must open its own."""
    from django.db import connections

    connections.close_all()


def child_exit(server, worker) -> None:
    """Drop a dead worker's live gauges from the multiprocess metrics."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
