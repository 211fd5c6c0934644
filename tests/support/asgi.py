"""An ASGI app served by uvicorn on a free loopback port in a thread, and a small HTTP client for it."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from tests.support.servers import Answer, free_port


@contextmanager
def asgi_served(app: object) -> Iterator[str]:
    """Serve ``app`` until the block ends; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")  # type: ignore[arg-type]
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)  # polling a server's start, not the clock under test
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def get(url: str, *, authorization: str | None = None) -> Answer:
    return call(urllib.request.Request(url), authorization=authorization)  # noqa: S310 (loopback)


def post(url: str, *, authorization: str | None = None) -> Answer:
    return call(urllib.request.Request(url, data=b"", method="POST"), authorization=authorization)  # noqa: S310


def call(request: urllib.request.Request, *, authorization: str | None = None) -> Answer:
    """The answer, header names in lower case, whatever its status."""
    if authorization is not None:
        request.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310 (loopback test servers)
            return Answer(response.status, _lower(response.headers.items()), response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, _lower(error.headers.items()), error.read())


def _lower(headers: object) -> dict[str, str]:
    return {name.lower(): value for name, value in headers}  # type: ignore[attr-defined]
