"""Continuous load through HAProxy, every issued token verified downstream, and direct probes.

Each client is a thread with its own keep-alive connection to HAProxy and its own
``issuer_verify.TokenVerifier`` (its own JWKS cache, fetched through HAProxy): it exchanges its
Entra token, verifies what it got, and counts the outcome in the current ``Tally``. A scenario
opens a new tally (``Load.begin``) and reads it when it is done. Probes talk to one web instance
directly, on a fresh connection each, so every instance is seen, not only the ones HAProxy picks.
"""

from __future__ import annotations

import base64
import http.client
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlencode

from authz.rfc8693 import ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE
from issuer_verify import InvalidToken, TokenVerifier

AUDIENCE = "api://orders"
REQUEST_TIMEOUT = 10.0
HEADERS = {"Content-Type": "application/x-www-form-urlencoded", "Host": "127.0.0.1"}


def exchange_body(token: str) -> str:
    return urlencode(
        {
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": token,
            "subject_token_type": ACCESS_TOKEN_TYPE,
            "audience": AUDIENCE,
        }
    )


def token_kid(token: str) -> str:
    """The ``kid`` in a compact JWS's header (read only to say which key signed; never trusted)."""
    header = token.split(".", 1)[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


@dataclass
class Tally:
    """What the clients saw in one window: answers by kind, verification failures, signing keys."""

    started: float = field(default_factory=time.monotonic)
    requests: int = 0
    verified: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    verification_failures: Counter[str] = field(default_factory=Counter)
    kids: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def answer(self, status: int, error: str | None = None) -> None:
        with self.lock:
            self.requests += 1
            self.errors[f"{status} {error}" if error else str(status)] += 1

    def connection_error(self, kind: str) -> None:
        with self.lock:
            self.requests += 1
            self.errors[f"connection: {kind}"] += 1

    def token(self, kid: str, failure: str | None) -> None:
        with self.lock:
            self.requests += 1
            self.kids[kid] += 1
            if failure is None:
                self.verified += 1
            else:
                self.verification_failures[failure] += 1

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def errors_text(self) -> str:
        return _counts_text(self.errors)

    def verification_text(self) -> str:
        return _counts_text(self.verification_failures, zero="0")

    def statuses_5xx(self) -> int:
        return sum(count for kind, count in self.errors.items() if kind[:1] == "5")


def _counts_text(counts: Counter[str], *, zero: str = "none") -> str:
    if not counts:
        return zero
    return ", ".join(f"{kind} x{count}" for kind, count in sorted(counts.items(), key=lambda item: -item[1]))


class Client(threading.Thread):
    """One downstream caller: exchange, verify, repeat (paced to ``rate`` requests a second if set)."""

    def __init__(self, load: Load, token: str, number: int) -> None:
        super().__init__(name=f"client-{number}", daemon=True)
        self.load = load
        self.body = exchange_body(token)
        self.verifier = TokenVerifier(
            issuer=load.issuer,
            audience=AUDIENCE,
            jwks_uri=f"http://127.0.0.1:{load.port}/.well-known/jwks.json",
            # Honour the issuer's short max-age (the bench's JWKS_MAX_AGE) instead of the kit's
            # one-minute floor: the floor must never exceed the issuer's KEY_PUBLISH_LEAD.
            min_cache_age=1,
        )

    def run(self) -> None:
        connection: http.client.HTTPConnection | None = None
        interval = 1.0 / self.load.rate if self.load.rate else 0.0
        while not self.load.stopping.is_set():
            started = time.monotonic()
            tally = self.load.tally
            try:
                if connection is None:
                    connection = http.client.HTTPConnection(
                        "127.0.0.1", self.load.port, timeout=REQUEST_TIMEOUT
                    )
                connection.request("POST", "/oauth2/token", self.body, HEADERS)
                response = connection.getresponse()
                data = response.read()
                if response.getheader("Connection", "").lower() == "close":
                    connection.close()
                    connection = None
            except (OSError, http.client.HTTPException) as error:
                tally.connection_error(type(error).__name__)
                if connection is not None:
                    connection.close()
                connection = None
                time.sleep(0.05)
                continue
            self.record(tally, response.status, data)
            pause = interval - (time.monotonic() - started)
            if pause > 0:
                self.load.stopping.wait(pause)
        if connection is not None:
            connection.close()

    def record(self, tally: Tally, status: int, data: bytes) -> None:
        if status != 200:
            tally.answer(status, _error_code(data))
            return
        token = json.loads(data)["access_token"]
        try:
            self.verifier.verify(token)
        except InvalidToken as invalid:
            tally.token(token_kid(token), invalid.reason)
        else:
            tally.token(token_kid(token), None)


def _error_code(data: bytes) -> str | None:
    try:
        document = json.loads(data)
    except ValueError:
        return "not JSON"
    return str(document.get("error")) if isinstance(document, dict) else "not an object"


class Load:
    """``clients`` threads against HAProxy on ``port``, one Entra token each, until ``stop``."""

    def __init__(self, *, port: int, issuer: str, tokens: list[str], rate: float) -> None:
        self.port = port
        self.issuer = issuer
        self.rate = rate
        self.stopping = threading.Event()
        self.tally = Tally()
        self.clients = [Client(self, token, number) for number, token in enumerate(tokens)]

    def start(self) -> None:
        for client in self.clients:
            client.start()

    def begin(self) -> Tally:
        """A new window: answers from now on are counted in the tally returned."""
        self.tally = Tally()
        return self.tally

    def stop(self) -> None:
        self.stopping.set()
        for client in self.clients:
            client.join(timeout=REQUEST_TIMEOUT + 5)


# --- probes of one instance ----------------------------------------------------------------------
def exchange_direct(port: int, token: str) -> tuple[int | None, str | None]:
    """(status, kid of the issued token or the error code) from one instance; (None, kind) if it is down."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    try:
        connection.request("POST", "/oauth2/token", exchange_body(token), HEADERS)
        response = connection.getresponse()
        data = response.read()
    except (OSError, http.client.HTTPException) as error:
        return None, type(error).__name__
    finally:
        connection.close()
    if response.status == 200:
        return 200, token_kid(json.loads(data)["access_token"])
    return response.status, _error_code(data)


def jwks_kids(port: int) -> set[str] | None:
    """The kids one instance publishes now; None when it does not answer 200."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    try:
        connection.request("GET", "/.well-known/jwks.json", headers={"Host": "127.0.0.1"})
        response = connection.getresponse()
        data = response.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()
    if response.status != 200:
        return None
    return {str(key["kid"]) for key in json.loads(data)["keys"]}
