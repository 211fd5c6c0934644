"""The cluster's processes: each in its own process group, started from deploy/, stopped on the way out.

``Stack`` starts the web instances, worker and beat with the commands of ``deploy/Procfile``, HAProxy
with ``deploy/haproxy.cfg``, and a dedicated redis-server; it stops all of them (SIGTERM to each
group, then SIGKILL) whatever happens. The environment is ``deploy/issuer.env.example`` with the
values of this machine laid over it (``cluster_environment``).
"""

from __future__ import annotations

import contextlib
import csv
import http.client
import io
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
PROCFILE = DEPLOY / "Procfile"
HAPROXY_CONFIG = DEPLOY / "haproxy.cfg"
ENV_EXAMPLE = DEPLOY / "issuer.env.example"
VENV_BIN = ROOT / ".venv" / "bin"
HAPROXY = "/usr/sbin/haproxy"
PLACEHOLDER = "CHANGE_ME"
STOP_TIMEOUT = 20.0
START_TIMEOUT = 90.0


def procfile_commands(path: Path = PROCFILE) -> dict[str, list[str]]:
    """``{"web": [...], "worker": [...], "beat": [...]}`` from a Procfile (``name: command`` lines)."""
    commands: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, separator, command = line.partition(":")
        if not separator or not name.strip().isidentifier():
            raise ValueError(f"{path}: not a `name: command` line: {line!r}")
        commands[name.strip()] = shlex.split(command)
    return commands


def env_file_read(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    """``NAME=value`` lines (comments and blank lines skipped), as systemd's EnvironmentFile reads them."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, separator, value = line.partition("=")
        if not separator or not name.strip().isidentifier():
            raise ValueError(f"{path}: not a NAME=value line: {line!r}")
        values[name.strip()] = value.strip()
    return values


def cluster_environment(overrides: Mapping[str, str], *, example: Path = ENV_EXAMPLE) -> dict[str, str]:
    """The example environment with ``overrides`` on top; refuses any placeholder left unreplaced."""
    environment = {**env_file_read(example), **overrides}
    left = sorted(name for name, value in environment.items() if PLACEHOLDER in value)
    if left:
        raise ValueError(f"{example.name}: placeholders not replaced for {', '.join(left)}")
    return environment


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def http_status(port: int, path: str, *, timeout: float = 2.0) -> int | None:
    """The status of GET ``path`` on a loopback port; None when nothing answers."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Host": "127.0.0.1"})
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def wait_for(what: str, ready: Callable[[], bool], *, timeout: float = START_TIMEOUT) -> float:
    """Poll ``ready`` every 50 ms until it holds; the seconds it took. Raises after ``timeout``."""
    started = time.monotonic()
    while not ready():
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - started


@dataclass
class Process:
    """One started command: its own process group, so a stop reaches its children too."""

    name: str
    popen: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signum)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        if not self.alive():
            self.signal_group(signal.SIGKILL)  # children a dead leader left behind
            return
        self.signal_group(signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal_group(signal.SIGKILL)
            self.popen.wait(timeout=timeout)
        self.signal_group(signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL the whole group at once: no drain, no goodbye (a crash, an OOM kill)."""
        self.signal_group(signal.SIGKILL)
        self.popen.wait(timeout=STOP_TIMEOUT)

    def log_tail(self, characters: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-characters:] if self.log.exists() else ""


@dataclass
class Stack:
    """Every process the cluster started, by name; ``stop_all`` stops them in reverse order."""

    work: Path
    environment: dict[str, str]
    processes: dict[str, Process] = field(default_factory=dict)
    commands: dict[str, list[str]] = field(default_factory=procfile_commands)

    def process_environment(self, **extra: str) -> dict[str, str]:
        base = {
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": os.environ.get("HOME", str(self.work)),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": "config.settings",
        }
        return {**base, **self.environment, **extra}

    def start(self, name: str, command: list[str], **extra: str) -> Process:
        if name in self.processes and self.processes[name].alive():
            raise RuntimeError(f"{name} is already running")
        log = self.work / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                command,
                cwd=ROOT,
                env=self.process_environment(**extra),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = Process(name=name, popen=popen, log=log)
        self.processes[name] = process
        return process

    def start_procfile(self, name: str, kind: str, **extra: str) -> Process:
        """A process of the Procfile's ``kind`` (web, worker, beat) under ``name``."""
        return self.start(name, self.commands[kind], **extra)

    def start_web(self, name: str, port: int) -> Process:
        process = self.start_procfile(name, "web", PORT=str(port))
        self.wait_ready(process, port)
        return process

    def wait_ready(self, process: Process, port: int) -> float:
        def ready() -> bool:
            if not process.alive():
                raise RuntimeError(f"{process.name} exited:\n{process.log_tail()}")
            return http_status(port, "/readyz") == 200

        return wait_for(f"{process.name} on port {port} to be ready", ready)

    def manage(self, *arguments: str, timeout: float = 120) -> str:
        """A management command with the cluster's environment; its output (stops the run on failure)."""
        completed = subprocess.run(
            [str(VENV_BIN / "python"), "manage.py", *arguments],
            cwd=ROOT,
            env=self.process_environment(LOG_LEVEL="WARNING"),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"manage.py {arguments[0]} failed:\n{completed.stdout}\n{completed.stderr}")
        return completed.stdout

    def manage_spawn(self, *arguments: str) -> subprocess.Popen:
        """A management command left running, its output (stdout and stderr) on a text pipe."""
        return subprocess.Popen(
            [str(VENV_BIN / "python"), "manage.py", *arguments],
            cwd=ROOT,
            env=self.process_environment(LOG_LEVEL="WARNING"),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def stop(self, name: str) -> None:
        self.processes[name].stop()

    def stop_all(self) -> None:
        for process in reversed(list(self.processes.values())):
            try:
                process.stop()
            except Exception as error:
                print(f"cluster: could not stop {process.name}: {error}", file=sys.stderr)


# --- the services --------------------------------------------------------------------------------
def psql(sql: str, *, database: str = "postgres") -> str:
    completed = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"psql failed: {completed.stderr.strip()}")
    return completed.stdout


def database_recreate(name: str) -> None:
    psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    psql(f"CREATE DATABASE {name}")


def redis_start(stack: Stack, port: int) -> Process:
    """A redis-server of the cluster's own (no persistence), so restarting it disturbs nobody else."""
    if port_open(port):
        raise RuntimeError(f"port {port} is taken: another cluster run, or choose --redis-port")
    command = [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(stack.work),
    ]
    process = stack.start("redis", command)
    wait_for("redis", lambda: port_open(port), timeout=20)
    return process


def haproxy_environment(
    *, port: int, web_ports: list[int], socket_path: Path, maxconn: int
) -> dict[str, str]:
    if len(web_ports) != 3:
        raise ValueError("deploy/haproxy.cfg lists three web instances")
    environment = {
        "ISSUER_BIND": f"127.0.0.1:{port}",
        "ISSUER_HOST": "127.0.0.1",
        "ISSUER_WEB_MAXCONN": str(maxconn),
        "HAPROXY_STATS_SOCKET": str(socket_path),
    }
    for number, web_port in enumerate(web_ports, start=1):
        environment[f"ISSUER_WEB_{number}"] = f"127.0.0.1:{web_port}"
    return environment


def haproxy_start(stack: Stack, environment: dict[str, str]) -> Process:
    """HAProxy in the foreground (-db) with deploy/haproxy.cfg as it is, after checking it (-c)."""
    check = subprocess.run(
        [HAPROXY, "-c", "-q", "-f", str(HAPROXY_CONFIG)],
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=30,
    )
    if check.returncode != 0:
        raise RuntimeError(f"haproxy -c refused deploy/haproxy.cfg:\n{check.stdout}{check.stderr}")
    return stack.start("haproxy", [HAPROXY, "-db", "-f", str(HAPROXY_CONFIG)], **environment)


def haproxy_servers(socket_path: Path) -> dict[str, str]:
    """``{"web1": "UP", ...}``: the backend's servers as HAProxy sees them (``show stat``)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as admin:
        admin.settimeout(2)
        admin.connect(str(socket_path))
        admin.sendall(b"show stat\n")
        chunks = []
        while chunk := admin.recv(65536):
            chunks.append(chunk)
    text = b"".join(chunks).decode().lstrip("# ")
    rows = csv.DictReader(io.StringIO(text))
    return {
        row["svname"]: row["status"].split()[0]
        for row in rows
        if row["pxname"] == "issuer_web" and row["svname"] not in ("BACKEND", "FRONTEND")
    }
