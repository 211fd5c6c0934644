"""The local stack behind ``make run``: the web server, a Celery worker and beat, stopped together.

Run from the repository root as ``python -m config.devserver``; ``PORT`` (default 8000) picks the
port. It refuses to start, in one line, when another run of this checkout holds ``var/devserver.lock``
or the port is taken; then it prepares the database (migrations, a local admin, a first signing key)
and starts the three processes. Ctrl-C, SIGTERM or SIGHUP forwards one SIGTERM to each, waits for
them and exits 0; if one of them stops by itself, the others are stopped and the exit code is 1.

It only spawns processes: it imports no project app, so a broken app still gets a clean stop.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

BASE_DIR = Path(__file__).resolve().parent.parent
MANAGE = str(BASE_DIR / "manage.py")
HOST = "127.0.0.1"
# Celery's warm shutdown lets a running task finish first; the scheduled tasks take well under this.
STOP_TIMEOUT = 20.0
POLL_INTERVAL = 0.2

SETUP = (("migrate", "--noinput"), ("ensure_local_admin",), ("rotate_keys",))


def stack(port: int) -> dict[str, list[str]]:
    """The long-running processes by name, in start order: beat last, once everything else is up."""
    celery = [sys.executable, "-m", "celery", "-A", "config"]
    return {
        "web server": [sys.executable, MANAGE, "runserver", "--noreload", f"{HOST}:{port}"],
        "worker": [*celery, "worker", "--loglevel=INFO", "--concurrency=2"],
        "beat": [*celery, "beat", "--loglevel=INFO"],
    }


def say(message: str) -> None:
    # The terminal may be gone (`make run | tee log`: tee dies with the same Ctrl-C); a message
    # that cannot be shown must not keep the supervisor from stopping its children.
    with contextlib.suppress(OSError):
        print(f"devserver: {message}", file=sys.stderr, flush=True)


def take_lock(var_dir: Path) -> IO[str] | None:
    """Hold the checkout's lock (None when another run has it); the file names the holder's pid."""
    var_dir.mkdir(parents=True, exist_ok=True)
    lock = (var_dir / "devserver.lock").open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip()
        lock.close()
        pid = f" (pid {holder})" if holder else ""
        say(f"another `make run` of this checkout is running{pid}; stop it first")
        return None
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


def port_is_free(port: int) -> bool:
    # The same socket options as runserver's, so a port it could bind is reported free.
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


class Supervisor:
    """Starts processes in their own process groups and stops them with one SIGTERM each.

    The terminal's Ctrl-C reaches only this process (the children are not in the foreground
    group), so each child gets exactly one signal, from here, however often the key is pressed.
    """

    def __init__(self, *, environment: dict[str, str], lock: IO[str]) -> None:
        self.environment = environment
        self.lock = lock
        self.stop_signal: int | None = None
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def request_stop(self, signum: int, frame: object) -> None:
        if self.stop_signal is None:
            self.stop_signal = signum

    def start(self, name: str, command: list[str]) -> None:
        self.processes[name] = subprocess.Popen(  # noqa: S603 - our own interpreter and manage.py
            command,
            cwd=BASE_DIR,
            env=self.environment,
            stdin=subprocess.DEVNULL,
            process_group=0,
            # The lock stays held while any process of the stack lives, even if this one is killed.
            pass_fds=(self.lock.fileno(),),
        )

    def wait_for_first_exit(self) -> str | None:
        """The name of the first process to end, or None when a stop signal arrives first."""
        while self.stop_signal is None:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    return name
            time.sleep(POLL_INTERVAL)
        return None

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for name, process in self.processes.items():
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say(f"the {name} did not stop within {STOP_TIMEOUT:.0f} s; killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()

    def run_step(self, name: str, command: list[str]) -> int | None:
        """Run one setup command to its end: its exit code, or None when stopped by a signal."""
        self.start(name, command)
        if self.wait_for_first_exit() is None:
            self.stop_all()
            return None
        return self.processes.pop(name).returncode

    def serve(self, port: int) -> int:
        try:
            return self._serve(port)
        finally:
            self.stop_all()  # whatever ended the supervisor, no child outlives it

    def _serve(self, port: int) -> int:
        for args in SETUP:
            code = self.run_step(args[0], [sys.executable, MANAGE, *args])
            if code is None:
                say("stopped")
                return 0
            if code != 0:
                say(f"manage.py {args[0]} failed (exit code {code}); nothing started")
                return 1
        for name, command in stack(port).items():
            self.start(name, command)
        ended = self.wait_for_first_exit()
        if ended is None:
            say("stopping the web server, worker and beat")
            self.stop_all()
            say("stopped")
            return 0
        say(f"the {ended} exited (code {self.processes[ended].returncode}); stopping the others")
        self.stop_all()
        return 1


def main() -> int:
    try:
        port = int(os.environ.get("PORT") or 8000)
    except ValueError:
        say(f"PORT: expected a port number, got {os.environ['PORT']!r}")
        return 2
    # The same rule as settings.VAR_DIR, read without loading the settings.
    var_dir = Path(os.environ.get("VAR_DIR") or BASE_DIR / "var")
    lock = take_lock(var_dir)
    if lock is None:
        return 1
    if not port_is_free(port):
        say(f"port {port} on {HOST} is in use; stop what holds it or pick another: PORT={port + 1} make run")
        return 1
    # Unbuffered children keep the three streams in order when the output is piped or logged.
    supervisor = Supervisor(environment={**os.environ, "PORT": str(port), "PYTHONUNBUFFERED": "1"}, lock=lock)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, supervisor.request_stop)
    return supervisor.serve(port)


if __name__ == "__main__":
    sys.exit(main())
