"""Rotation, revocation, publishing and signing as downstream verifiers and auditors see them."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, InvalidKeyIdError
from joserfc.jwk import KeySet

from keys import engine
from keys.errors import KeyNotPublished, NoActiveKey, UnknownKey
from keys.models import JwksDocument, SigningKey
from keys.selectors import JWKS_CACHE_SECONDS, jwks_document_get, signing_key_active_exists
from keys.services import (
    ActiveSignerCache,
    RotationClock,
    _rotation_lock,
    active_signer_cache,
    jwks_publish,
    rotation_policy,
    signing_key_revoke,
    signing_key_rotate,
    token_sign,
)

pytestmark = pytest.mark.django_db
T0 = datetime(2030, 1, 1, tzinfo=UTC)


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock(T0)
    monkeypatch.setattr(RotationClock, "now", staticmethod(fake))
    return fake


@pytest.fixture
def policy(settings):
    settings.KEY_ALGORITHM = "ES256"
    settings.TOKEN_LIFETIME = 600
    settings.KEY_PUBLISH_LEAD = 3600
    settings.JWKS_MAX_AGE = 900
    settings.KEY_ROTATION_INTERVAL = 7 * 86_400
    return rotation_policy()


def published_kids() -> list[str]:
    body, _etag = jwks_document_get()
    return [key["kid"] for key in json.loads(body)["keys"]]


def sign_at(clock: FakeClock, **extra) -> str:
    issued = int(clock.now.timestamp())
    return token_sign(claims={"sub": "p-1", "iat": issued, "exp": issued + 600, **extra})


def verify_at(token: str, clock: FakeClock) -> dict:
    """Verify as a downstream service would at the fake time: signature from the JWKS, then exp."""
    body, _etag = jwks_document_get()
    decoded = jwt.decode(
        token, KeySet.import_key_set(json.loads(body)), algorithms=["ES256", "RS256", "PS256"]
    )
    jwt.JWTClaimsRegistry(now=int(clock.now.timestamp()), leeway=60).validate(decoded.claims)
    return decoded.claims


ALGORITHMS = ["ES256", "RS256", "PS256"]


def header_kid(token: str) -> str:
    return decoded(token).header["kid"]


def decoded(token: str, key_set: KeySet | None = None) -> jwt.Token:
    """Signature check only, against the published JWKS unless another key set is given."""
    key_set = key_set or KeySet.import_key_set(json.loads(jwks_document_get()[0]))
    return jwt.decode(token, key_set, algorithms=ALGORITHMS)


def active_kid() -> str:
    return SigningKey.objects.get(phase=engine.ACTIVE).kid


def test_the_first_run_bootstraps_an_active_published_key(clock, policy):
    result = signing_key_rotate()

    key = SigningKey.objects.get()
    assert (key.phase, key.algorithm) == (engine.ACTIVE, "ES256")
    assert result.created == result.activated == (key.kid,)
    assert result.changed
    assert published_kids() == [key.kid]
    assert signing_key_active_exists()


def test_rotation_is_idempotent(clock, policy):
    signing_key_rotate()
    versions = JwksDocument.objects.count()

    result = signing_key_rotate()

    assert not result.changed
    assert SigningKey.objects.count() == 1
    assert JwksDocument.objects.count() == versions


def test_issued_tokens_carry_typ_kid_and_alg_and_verify_against_the_jwks(clock, policy):
    signing_key_rotate()

    token = sign_at(clock, aud="api://orders")

    header = decoded(token).header
    assert header == {"alg": "ES256", "kid": active_kid(), "typ": "at+jwt"}
    assert verify_at(token, clock)["aud"] == "api://orders"


@pytest.mark.parametrize("algorithm", ["RS256", "PS256"])
def test_rsa_algorithms_sign_verifiable_tokens(clock, policy, settings, algorithm):
    settings.KEY_ALGORITHM = algorithm
    signing_key_rotate()

    token = sign_at(clock)

    assert decoded(token).header["alg"] == algorithm
    assert verify_at(token, clock)["sub"] == "p-1"


def test_a_successor_is_published_for_the_lead_before_the_first_token_it_signs(clock, policy):
    signing_key_rotate()
    old = active_kid()
    clock.advance(seconds=policy.rotation_interval.total_seconds() - policy.publish_lead.total_seconds())

    created = signing_key_rotate().created
    assert len(created) == 1
    successor = created[0]
    published_at = clock.now
    assert successor in published_kids()

    first_signed_by_successor = None
    for _ in range(200):
        clock.advance(minutes=1)
        signing_key_rotate()
        if header_kid(sign_at(clock)) == successor:
            first_signed_by_successor = clock.now
            break
        assert header_kid(sign_at(clock)) == old
        assert successor in published_kids()

    assert first_signed_by_successor is not None
    assert first_signed_by_successor - published_at >= timedelta(seconds=3600)
    # and the lead was measured from a stored JWKS version that already held the successor
    first_version = min(
        document.created_at for document in JwksDocument.objects.all() if successor in document.body
    )
    assert first_signed_by_successor - first_version >= timedelta(seconds=3600)


def test_a_token_signed_before_a_rotation_verifies_until_it_expires(clock, policy):
    signing_key_rotate()
    old = active_kid()
    signing_key_rotate(force=True)
    clock.advance(seconds=policy.publish_lead.total_seconds() - 1)
    token = sign_at(clock)  # the last second before the successor takes over
    expires = clock.now + timedelta(seconds=600)
    clock.advance(seconds=1 + JWKS_CACHE_SECONDS)
    assert signing_key_rotate().activated
    assert active_kid() != old

    while clock.now < expires:
        signing_key_rotate()
        assert old in published_kids()
        assert verify_at(token, clock)["sub"] == "p-1"
        clock.advance(seconds=30)

    clock.advance(seconds=policy.retire_after.total_seconds())
    assert signing_key_rotate().retired == (old,)
    assert old not in published_kids()
    with pytest.raises(ExpiredTokenError):  # by now the token is dead anyway
        claims = decoded(token, _retired_key_set(old)).claims
        jwt.JWTClaimsRegistry(now=int(clock.now.timestamp()), leeway=60).validate(claims)


def _retired_key_set(kid: str) -> KeySet:
    key = SigningKey.objects.get(kid=kid)
    return KeySet.import_key_set({"keys": [{**key.public_jwk, "kid": kid, "alg": key.algorithm}]})


def test_a_retired_key_loses_its_private_material(clock, policy):
    signing_key_rotate()
    old = active_kid()
    signing_key_rotate(force=True)
    clock.advance(seconds=policy.publish_lead.total_seconds())
    signing_key_rotate()
    clock.advance(seconds=policy.retire_after.total_seconds())
    signing_key_rotate()

    retired = SigningKey.objects.get(kid=old)
    assert retired.phase == engine.RETIRED
    assert bytes(retired.store_reference) == b""


def test_revoking_the_active_key_removes_it_from_the_jwks_and_signs_with_another_at_once(clock, policy):
    signing_key_rotate()
    revoked = active_kid()
    before = sign_at(clock)

    signing_key_revoke(kid=revoked)

    assert revoked not in published_kids()
    after = sign_at(clock)
    assert header_kid(after) != revoked
    assert verify_at(after, clock)
    with pytest.raises(InvalidKeyIdError):
        verify_at(before, clock)
    key = SigningKey.objects.get(kid=revoked)
    assert (key.phase, key.revoked_at, bytes(key.store_reference)) == (engine.REVOKED, clock.now, b"")


def test_revoking_the_active_key_activates_a_published_successor_first(clock, policy):
    signing_key_rotate()
    revoked = active_kid()
    successor = signing_key_rotate(force=True).created[0]

    signing_key_revoke(kid=revoked)

    assert active_kid() == successor
    assert published_kids() == [successor]


def test_revoking_a_pending_key_keeps_the_active_one(clock, policy):
    signing_key_rotate()
    active = active_kid()
    pending = signing_key_rotate(force=True).created[0]

    signing_key_revoke(kid=pending)

    assert active_kid() == active
    assert published_kids() == [active]


def test_revoking_twice_is_harmless(clock, policy):
    signing_key_rotate()
    kid = active_kid()
    signing_key_revoke(kid=kid)
    versions = JwksDocument.objects.count()

    signing_key_revoke(kid=kid)

    assert JwksDocument.objects.count() == versions


@pytest.mark.parametrize("kid", ["nope", "", "x" * 10_000, None, 42])
def test_revoking_an_unknown_kid_is_a_clear_domain_error(clock, policy, kid):
    signing_key_rotate()

    with pytest.raises(UnknownKey, match="no signing key with kid"):
        signing_key_revoke(kid=kid)


def test_another_worker_stops_signing_with_a_revoked_key_within_ten_seconds(clock, policy):
    signing_key_rotate()
    revoked = active_kid()
    ticks = [1000.0]
    other_worker = ActiveSignerCache(clock=lambda: ticks[0])
    assert other_worker.get().kid == revoked

    signing_key_revoke(kid=revoked)

    ticks[0] += ActiveSignerCache.RECHECK_SECONDS
    assert other_worker.get().kid != revoked
    assert ActiveSignerCache.RECHECK_SECONDS < 10


def test_the_signer_cache_rechecks_the_active_key_at_most_every_interval(
    clock, policy, django_assert_num_queries
):
    signing_key_rotate()
    ticks = [0.0]
    cache = ActiveSignerCache(clock=lambda: ticks[0], recheck_seconds=5)
    with django_assert_num_queries(1):
        first = cache.get()
        ticks[0] = 4.9
        assert cache.get() is first
    ticks[0] = 5.0
    with django_assert_num_queries(1):
        assert cache.get() is first  # same kid: the decrypted key is kept, not reloaded


def test_signing_needs_no_query_per_token(clock, policy, django_assert_num_queries):
    signing_key_rotate()
    sign_at(clock)

    with django_assert_num_queries(0):
        for _ in range(50):
            sign_at(clock)


def test_without_an_active_key_signing_is_a_clear_domain_error(clock, policy):
    with pytest.raises(NoActiveKey):
        token_sign(claims={"sub": "p-1"})
    assert not signing_key_active_exists()


def test_claims_must_be_a_dict(clock, policy):
    signing_key_rotate()
    with pytest.raises(TypeError):
        token_sign(claims=[("sub", "p-1")])


def test_a_changed_algorithm_rotates_to_it_through_the_publish_lead(clock, policy, settings):
    signing_key_rotate()
    settings.KEY_ALGORITHM = "PS256"

    successor = signing_key_rotate().created[0]

    assert SigningKey.objects.get(kid=successor).algorithm == "PS256"
    assert SigningKey.objects.get(kid=successor).phase == engine.PENDING


def test_publishing_an_unchanged_key_set_keeps_the_version(clock, policy):
    signing_key_rotate()
    first = jwks_publish()

    again = jwks_publish()

    assert again.version == first.version
    assert again.etag == first.etag


def test_the_etag_is_strong_and_follows_the_body(clock, policy):
    signing_key_rotate()
    first_body, first_etag = jwks_document_get()
    signing_key_rotate(force=True)
    second_body, second_etag = jwks_document_get()

    assert first_etag.startswith('"') and first_etag.endswith('"') and not first_etag.startswith("W/")
    assert first_body != second_body
    assert first_etag != second_etag


def test_the_jwks_is_served_from_the_cache_without_a_query(clock, policy, django_assert_num_queries):
    signing_key_rotate()
    expected = jwks_document_get()

    with django_assert_num_queries(0):
        assert jwks_document_get() == expected


def test_the_published_document_is_distributed_after_commit(
    clock, policy, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.JWKS_PUBLISH_PATH = str(tmp_path / "static" / "jwks.json")
    with django_capture_on_commit_callbacks(execute=True):
        signing_key_rotate()

    on_disk = (tmp_path / "static" / "jwks.json").read_bytes()
    assert on_disk == jwks_document_get()[0]
    assert json.loads(on_disk)["keys"][0]["kid"] == active_kid()
    assert list((tmp_path / "static").iterdir()) == [tmp_path / "static" / "jwks.json"]


def test_the_database_never_holds_a_private_key_in_clear(clock, policy, settings):
    from cryptography.hazmat.primitives import serialization

    from keys.stores import b64url, key_store_get

    signing_key_rotate()
    settings.KEY_ALGORITHM = "RS256"
    signing_key_rotate(force=True)
    store = key_store_get()
    needles: list[bytes] = [b"PRIVATE KEY"]
    for key in SigningKey.objects.all():
        der = store.unseal(kid=key.kid, sealed=bytes(key.store_reference))
        private = serialization.load_der_private_key(der, password=None)
        numbers = private.private_numbers()
        secrets = (
            [numbers.private_value]
            if hasattr(numbers, "private_value")
            else [numbers.d, numbers.p, numbers.q]
        )
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        needles += [der, der[-32:], pem.splitlines()[1]]
        for secret in secrets:
            raw = secret.to_bytes((secret.bit_length() + 7) // 8, "big")
            needles += [raw, b64url(raw).encode(), raw.hex().encode(), str(secret).encode()]

    dump = _database_dump()

    assert SigningKey.objects.count() == 2
    for needle in needles:
        assert needle not in dump


def _database_dump() -> bytes:
    """Every value of every table, as raw bytes (binary as stored, text as UTF-8)."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 - table names from introspection
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        chunks.append(bytes(value))
                    elif value is not None:
                        chunks.append(str(value).encode("utf-8"))
    return b"\x00".join(chunks)


@pytest.mark.django_db(transaction=True)
def test_concurrent_rotations_create_exactly_one_successor(require_postgres, clock, policy):
    signing_key_rotate()
    clock.advance(seconds=(policy.rotation_interval - policy.publish_lead).total_seconds())
    workers = 6
    barrier = threading.Barrier(workers)
    results, errors = [], []

    def rotate() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(signing_key_rotate())
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=rotate) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sum(len(result.created) for result in results) == 1
    assert SigningKey.objects.filter(phase=engine.PENDING).count() == 1
    assert SigningKey.objects.filter(phase=engine.ACTIVE).count() == 1
    versions = list(JwksDocument.objects.values_list("version", flat=True))
    assert sorted(versions) == list(range(1, len(versions) + 1))
    assert active_signer_cache.get().kid == SigningKey.objects.get(phase=engine.ACTIVE).kid


def _wait_until_a_backend_waits_for_a_lock() -> None:
    """Poll PostgreSQL (not the clock) until another session is blocked on a row lock."""
    pause = threading.Event()  # never set: wait(0.01) is a short poll interval
    for _ in range(2000):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            if cursor.fetchone()[0]:
                return
        pause.wait(0.01)
    raise AssertionError("the rotation never waited for the lock")


@pytest.mark.django_db(transaction=True)
def test_a_rotation_that_waited_for_the_lock_stamps_its_successor_after_the_wait(
    require_postgres, clock, policy
):
    """published_at starts the publish lead: stamped before the wait, the successor would sign
    as much earlier than KEY_PUBLISH_LEAD after it actually appeared in the JWKS."""
    signing_key_rotate()
    clock.advance(seconds=(policy.rotation_interval - policy.publish_lead).total_seconds())
    held, release, errors = threading.Event(), threading.Event(), []

    def hold_the_lock() -> None:
        try:
            with transaction.atomic():
                _rotation_lock()
                held.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    def rotate() -> None:
        try:
            signing_key_rotate()
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    assert held.wait(timeout=10)
    rotator = threading.Thread(target=rotate)
    rotator.start()
    try:
        _wait_until_a_backend_waits_for_a_lock()
        unlocked_at = clock.advance(minutes=10)  # another worker held the lock this long
    finally:
        release.set()
        holder.join(timeout=30)
        rotator.join(timeout=60)

    assert errors == []
    successor = SigningKey.objects.get(phase=engine.PENDING)
    assert successor.published_at == unlocked_at


def test_a_retiring_key_outlives_the_longest_allowed_token_lifetime_whatever_the_setting(settings):
    from keys.services import rotation_policy

    settings.TOKEN_LIFETIME = 60
    assert rotation_policy().token_lifetime.total_seconds() == 900


def test_a_key_already_gone_from_the_jwks_cannot_be_revoked():
    signing_key_rotate()
    key = SigningKey.objects.get(phase=engine.ACTIVE)
    SigningKey.objects.filter(pk=key.pk).update(phase=engine.RETIRED)
    with pytest.raises(KeyNotPublished, match="not published, nothing to revoke"):
        signing_key_revoke(kid=key.kid)
    assert SigningKey.objects.get(pk=key.pk).phase == engine.RETIRED
