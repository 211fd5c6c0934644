"""config/devserver.py (`make run`) for real: one stack per checkout and port, and Ctrl-C stops it cleanly."""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Migrations on a fresh SQLite file, then the web server, the worker and beat, on a shared machine.
START_TIMEOUT = 180
# Celery's warm shutdown over the filesystem broker takes several of its 1 s polling rounds.
STOP_TIMEOUT = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def development(var_dir: Path, port: int) -> dict[str, str]:
    """What `make run` gives its stack, less the secrets: DEBUG, SQLite and the broker under var_dir."""
    return {"PATH": os.environ["PATH"], "DEBUG": "true", "VAR_DIR": str(var_dir), "PORT": str(port)}


def devserver(environment: dict[str, str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "config.devserver"], cwd=ROOT, env=environment, **kwargs)


def refusal(environment: dict[str, str]) -> list[str]:
    """The lines a devserver that must refuse prints; it exits 1 at once."""
    process = devserver(environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 1, output
    return output.splitlines()


def healthz(port: int) -> int | None:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", "/healthz")
        return connection.getresponse().status
    except (OSError, http.client.HTTPException):
        return None


def wait_until_serving(process: subprocess.Popen, port: int, log: Path) -> None:
    """Until /healthz answers and the worker and beat say they started."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        text = log.read_text()
        if "ready." in text and "beat: Starting" in text and healthz(port) == 200:
            return
        time.sleep(0.5)
    pytest.fail(f"the stack did not come up within {START_TIMEOUT} s:\n{log.read_text()}")


@pytest.fixture
def running(tmp_path):
    """A started `make run` stack on a free port; stopped if a test leaves it running."""
    port = free_port()
    var_dir = tmp_path / "var"
    log = tmp_path / "devserver.log"
    with log.open("wb") as out:
        process = devserver(development(var_dir, port), stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until_serving(process, port, log)
        yield process, port, var_dir, log
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=STOP_TIMEOUT)


def test_a_busy_port_is_refused_in_one_line_before_anything_starts(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]

        lines = refusal(development(tmp_path, port))

    assert lines == [
        f"devserver: port {port} on 127.0.0.1 is in use; stop what holds it or pick another: "
        f"PORT={port + 1} make run"
    ]
    assert not (tmp_path / "db.sqlite3").exists()


def test_a_second_run_is_refused_and_ctrl_c_stops_everything_cleanly(running, tmp_path):
    process, port, var_dir, log = running

    lines = refusal(development(var_dir, free_port()))
    assert lines == [
        f"devserver: another `make run` of this checkout is running (pid {process.pid}); stop it first"
    ]

    started = len(log.read_text().splitlines())
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=STOP_TIMEOUT) == 0

    output = log.read_text()
    after_ctrl_c = output.splitlines()[started:]
    assert after_ctrl_c[0] == "devserver: stopping the web server, worker and beat"
    assert after_ctrl_c[-1] == "devserver: stopped"
    assert len(after_ctrl_c) <= 6, after_ctrl_c
    assert "Traceback" not in output
    assert "Segmentation fault" not in output
    # Every process of the stack held the lock, so a free lock means none of them is left.
    with (var_dir / "devserver.lock").open() as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert healthz(port) is None
    # kombu's filesystem transport keeps its exchange bindings under var/, not in the working tree.
    assert (var_dir / "broker" / "control").is_dir()


def test_ctrl_c_stops_everything_even_when_the_terminal_pipe_is_gone(tmp_path):
    # `make run | tee log` and Ctrl-C: tee dies with the same signal, so the supervisor's own
    # messages hit a closed pipe. The children must be stopped all the same, never orphaned.
    port, var_dir = free_port(), tmp_path / "var"
    read_end, write_end = os.pipe()
    process = devserver(development(var_dir, port), stdout=write_end, stderr=write_end)
    os.close(write_end)
    seen: list[bytes] = []

    def read_until_closed() -> None:
        with contextlib.suppress(OSError):  # the test closes the pipe under this reader
            seen.extend(iter(lambda: os.read(read_end, 65536), b""))

    drain = threading.Thread(target=read_until_closed)
    drain.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while healthz(port) != 200 or b"beat: Starting" not in b"".join(seen):
            assert process.poll() is None and time.monotonic() < deadline, b"".join(seen).decode()
            time.sleep(0.5)
        os.close(read_end)  # the reader (tee) is gone
        process.send_signal(signal.SIGINT)
        process.wait(timeout=STOP_TIMEOUT)

        with (var_dir / "devserver.lock").open() as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert healthz(port) is None
    finally:
        if process.poll() is None:
            process.kill()
        drain.join(timeout=5)
