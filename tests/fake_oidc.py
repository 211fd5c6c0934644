"""A fake Entra ID OpenID provider on loopback for the portal's sign-in: authorize, token, JWKS, logout.

It speaks the real protocol over real HTTP: the authorize endpoint serves a small sign-in page whose
button redirects back to the client with a code; the token endpoint checks the client's secret, the
redirect URI and the PKCE verifier before answering with an RS256 ID token carrying the nonce; keys
are served by discovery and JWKS at Entra's paths. A silent sign-in (``prompt=none``, the session
refresh) redirects straight back with a code, or with ``interaction_required`` for a disabled account.
Tests choose who signs in (``account``) and can make the ID token lie (``id_token_claims``: a wrong
aud, iss or nonce).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.fake_entra import public_jwk, rsa_key, sign

HOME_TID = "66666666-6666-4666-8666-666666666666"
OTHER_TID = "77777777-7777-4777-8777-777777777777"
CLIENT_ID = "88888888-8888-4888-8888-888888888888"
CLIENT_SECRET = "fake-client-secret-for-tests"
ADMIN_ROLE = "Portal.Admin"


@dataclass
class Account:
    """A person in a directory, as the provider will describe them in the ID token."""

    oid: str = field(default_factory=lambda: str(uuid.uuid4()))
    tid: str = HOME_TID
    name: str = "Ada Lovelace"
    email: str = "ada@example.com"
    roles: list[str] = field(default_factory=lambda: [ADMIN_ROLE])
    # Blocked from signing in (or deleted) in the directory: silent sign-ins (prompt=none) then fail.
    disabled: bool = False


@dataclass
class PendingCode:
    """What the provider remembers about an authorization code until it is redeemed (once)."""

    account: Account
    client_id: str
    redirect_uri: str
    nonce: str | None
    code_challenge: str | None


class FakeOidcProvider:
    """The provider; ``authority`` is its base URL, like ENTRA_AUTHORITY."""

    def __init__(self) -> None:
        self.keys = {
            HOME_TID: (f"kid-{uuid.uuid4().hex[:12]}", rsa_key()),
            OTHER_TID: (f"kid-{uuid.uuid4().hex[:12]}", rsa_key()),
        }
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.server.daemon_threads = True
        self.authority = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-oidc", daemon=True)
        self.lock = threading.Lock()
        self.reset()

    def start(self) -> FakeOidcProvider:
        self.thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        self.account = Account()
        self.id_token_claims: dict[str, Any] = {}
        self.codes: dict[str, PendingCode] = {}
        self.authorize_requests: list[dict[str, str]] = []
        self.token_requests: list[dict[str, str]] = []
        self.logouts: list[dict[str, str]] = []
        self.fetches: Counter[str] = Counter()

    def endpoint(self, name: str, tid: str = HOME_TID) -> str:
        paths = {
            "authorize": "oauth2/v2.0/authorize",
            "token": "oauth2/v2.0/token",
            "keys": "discovery/v2.0/keys",
            "logout": "oauth2/v2.0/logout",
        }
        return f"{self.authority}/{tid}/{paths[name]}"

    # --- the protocol ------------------------------------------------------------------------
    def authorize_page(self, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """GET authorize: check the request and show a sign-in page with one button."""
        self.authorize_requests.append(query)
        problem = self._authorize_problem(query)
        if problem:
            return 400, {"Content-Type": "text/plain"}, problem.encode()
        if query.get("prompt") == "none" and self.account.disabled:
            # A silent sign-in cannot go on: Entra sends the browser back with an error, never a page.
            error = {"error": "interaction_required", "error_description": "AADSTS50057: account disabled"}
            back = f"{query['redirect_uri']}?{urlencode({**error, 'state': query.get('state', '')})}"
            return 302, {"Location": back}, b""
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = PendingCode(
                account=self.account,
                client_id=query["client_id"],
                redirect_uri=query["redirect_uri"],
                nonce=query.get("nonce"),
                code_challenge=query.get("code_challenge"),
            )
        back = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query.get('state', '')})}"
        if query.get("prompt") == "none":
            # A silent sign-in (the session refresh) goes straight back with a code for whoever is
            # signed in to the provider, with their current app roles.
            return 302, {"Location": back}, b""
        page = f"""<!doctype html><html><head><title>Sign in to your account</title>
<style>body{{font-family:'DejaVu Sans',sans-serif;background:#f2f2f2}}
main{{width:360px;margin:80px auto;background:#fff;padding:40px;box-shadow:0 2px 6px rgba(0,0,0,.2)}}
a.continue{{display:inline-block;background:#0067b8;color:#fff;padding:8px 24px;text-decoration:none}}</style>
</head><body><main><p>Microsoft (fake, on loopback)</p><h1>Pick an account</h1>
<p id="account">{html.escape(self.account.name)} &lt;{html.escape(self.account.email)}&gt;</p>
<a class="continue" id="continue" href="{html.escape(back)}">Continue</a></main></body></html>"""
        return 200, {"Content-Type": "text/html; charset=utf-8"}, page.encode()

    def _authorize_problem(self, query: dict[str, str]) -> str | None:
        if query.get("response_type") != "code":
            return "response_type must be code"
        if query.get("client_id") != CLIENT_ID:
            return "unknown client_id"
        if "openid" not in query.get("scope", "").split():
            return "scope must include openid"
        if not query.get("redirect_uri", "").endswith("/oidc/callback/"):
            return "redirect_uri is not registered"
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return "PKCE (S256) is required"
        return None

    def approve(self, authorize_url: str) -> str:
        """The URL the sign-in page's button leads back to (what a person clicking it would get)."""
        query = {name: values[0] for name, values in parse_qs(urlsplit(authorize_url).query).items()}
        status, _, body = self.authorize_page(query)
        if status != 200:
            raise AssertionError(body.decode())
        start = body.index(b'href="', body.index(b'id="continue"')) + len(b'href="')
        return html.unescape(body[start : body.index(b'"', start)].decode())

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """POST token: redeem a code once, for the right client, redirect URI and PKCE verifier."""
        self.token_requests.append(form)
        with self.lock:
            pending = self.codes.pop(form.get("code", ""), None)
        error = None
        if form.get("grant_type") != "authorization_code" or pending is None:
            error = "invalid_grant"
        elif form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            error = "invalid_client"
        elif form.get("redirect_uri") != pending.redirect_uri or pending.code_challenge != _s256(
            form.get("code_verifier", "")
        ):
            error = "invalid_grant"
        if error:
            return 400, {"Content-Type": "application/json"}, json.dumps({"error": error}).encode()
        answer = {
            "token_type": "Bearer",
            "expires_in": 3600,
            "access_token": secrets.token_urlsafe(32),
            "id_token": self.id_token(pending),
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(answer).encode()

    def id_token(self, pending: PendingCode) -> str:
        account = pending.account
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": pending.client_id,
            "iss": f"{self.authority}/{account.tid}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "tid": account.tid,
            "oid": account.oid,
            "sub": hashlib.sha256(f"{account.tid}{account.oid}".encode()).hexdigest()[:43],
            "nonce": pending.nonce,
            "name": account.name,
            "preferred_username": account.email,
            "email": account.email,
            "roles": account.roles,
            "ver": "2.0",
        }
        claims.update(self.id_token_claims)
        kid, key = self.keys[account.tid if account.tid in self.keys else HOME_TID]
        return sign(
            {"alg": "RS256", "typ": "JWT", "kid": kid},
            {name: value for name, value in claims.items() if value is not None},
            key,
        )

    def answer_get(self, path: str, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        self.fetches[path] += 1
        parts = path.strip("/").split("/")
        if len(parts) < 2 or parts[0] not in self.keys:
            return 404, {}, b"not found"
        tid, rest = parts[0], parts[1:]
        if rest == ["oauth2", "v2.0", "authorize"]:
            return self.authorize_page(query)
        if rest == ["oauth2", "v2.0", "logout"]:
            self.logouts.append(query)
            back = query.get("post_logout_redirect_uri")
            if back:
                return 302, {"Location": back}, b""
            return 200, {"Content-Type": "text/plain"}, b"You signed out of your account."
        if rest == ["v2.0", ".well-known", "openid-configuration"]:
            document = {"issuer": f"{self.authority}/{tid}/v2.0", "jwks_uri": self.endpoint("keys", tid)}
            return 200, {"Content-Type": "application/json"}, json.dumps(document).encode()
        if rest == ["discovery", "v2.0", "keys"]:
            kid, key = self.keys[tid]
            jwk = public_jwk(key, kid, issuer=f"{self.authority}/{{tenantid}}/v2.0")
            return 200, {"Content-Type": "application/json"}, json.dumps({"keys": [jwk]}).encode()
        return 404, {}, b"not found"


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _handler_for(fake: FakeOidcProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _query(self, raw: str) -> dict[str, str]:
            return {name: values[0] for name, values in parse_qs(raw, keep_blank_values=True).items()}

        def _send(self, answer: tuple[int, dict[str, str], bytes]) -> None:
            status, headers, body = answer
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            self._send(fake.answer_get(parts.path, self._query(parts.query)))

        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            form = self._query(self.rfile.read(length).decode())
            if parts.path.strip("/").split("/")[1:] == ["oauth2", "v2.0", "token"]:
                self._send(fake.token(form))
            else:
                self._send((404, {}, b"not found"))

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler
