"""Publishing the JWKS: versions, a strong ETag, the cache, and the copy distributed after commit."""

from __future__ import annotations

import json

import pytest

from keys.selectors import jwks_document_get
from keys.services import jwks_publish, signing_key_rotate
from tests.support.jwks import active_kid

pytestmark = pytest.mark.django_db


def test_publishing_an_unchanged_key_set_keeps_the_version(clock, weekly_rotation):
    signing_key_rotate()
    first = jwks_publish()

    again = jwks_publish()

    assert again.version == first.version
    assert again.etag == first.etag


def test_the_etag_is_strong_and_follows_the_body(clock, weekly_rotation):
    signing_key_rotate()
    first_body, first_etag = jwks_document_get()
    signing_key_rotate(force=True)
    second_body, second_etag = jwks_document_get()

    assert first_etag.startswith('"') and first_etag.endswith('"') and not first_etag.startswith("W/")
    assert first_body != second_body
    assert first_etag != second_etag


def test_the_jwks_is_served_from_the_cache_without_a_query(clock, weekly_rotation, django_assert_num_queries):
    signing_key_rotate()
    expected = jwks_document_get()

    with django_assert_num_queries(0):
        assert jwks_document_get() == expected


def test_the_published_document_is_distributed_after_commit(
    clock, weekly_rotation, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.JWKS_PUBLISH_PATH = str(tmp_path / "static" / "jwks.json")
    with django_capture_on_commit_callbacks(execute=True):
        signing_key_rotate()

    on_disk = (tmp_path / "static" / "jwks.json").read_bytes()
    assert on_disk == jwks_document_get()[0]
    assert json.loads(on_disk)["keys"][0]["kid"] == active_kid()
    assert list((tmp_path / "static").iterdir()) == [tmp_path / "static" / "jwks.json"]
