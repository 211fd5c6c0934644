"""The signing-key portal: phases and dates without private material, rotate and revoke confirmed."""

import base64

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from keys import engine
from keys.models import SigningKey
from keys.selectors import jwks_document_get
from keys.services import signing_key_rotate

pytestmark = pytest.mark.django_db
CHANGELIST = "admin:keys_signingkey_changelist"


@pytest.fixture
def key() -> SigningKey:
    signing_key_rotate()
    return SigningKey.objects.get()


def test_the_list_shows_kid_phase_and_dates_but_no_private_material(admin_client, key):
    page = admin_client.get(reverse(CHANGELIST)).content.decode()
    detail = admin_client.get(reverse("admin:keys_signingkey_change", args=[key.pk])).content.decode()

    sealed = bytes(key.store_reference)
    for html in (page, detail):
        assert key.kid in html
        assert "store_reference" not in html
        assert sealed.hex() not in html
        assert base64.b64encode(sealed).decode() not in html
    assert "Active (signing)" in page
    assert "Rotate now" in page
    assert "Revoke" in detail


def test_rotate_now_asks_for_confirmation_first(admin_client, key):
    response = admin_client.get(reverse("admin:keys_signingkey_rotate"))

    assert response.status_code == 200
    assert "Rotate the signing key now?" in response.content.decode()
    assert SigningKey.objects.count() == 1


def test_rotate_now_publishes_a_successor_recorded_with_the_admin(admin_client, admin_user, key):
    response = admin_client.post(reverse("admin:keys_signingkey_rotate"))

    assert response.status_code == 302
    successor = SigningKey.objects.get(phase=engine.PENDING)
    assert successor.kid.encode() in jwks_document_get()[0]
    created = successor.history.earliest()
    assert created.history_user == admin_user
    assert created.history_change_reason == "created and published"


def test_revoke_asks_for_confirmation_then_revokes_and_records_who(admin_client, admin_user, key):
    url = reverse("admin:keys_signingkey_revoke", args=[key.pk])

    confirm = admin_client.get(url)
    assert "Revoke this key?" in confirm.content.decode()
    assert SigningKey.objects.get(pk=key.pk).phase == engine.ACTIVE

    admin_client.post(url)

    key.refresh_from_db()
    assert key.phase == engine.REVOKED
    assert key.kid.encode() not in jwks_document_get()[0]
    latest = key.history.latest()
    assert (latest.history_user, latest.history_change_reason) == (admin_user, "revoked")


def test_a_gone_key_cannot_be_revoked_again(admin_client, key):
    url = reverse("admin:keys_signingkey_revoke", args=[key.pk])
    admin_client.post(url)
    keys_before = SigningKey.objects.count()

    response = admin_client.post(url, follow=True)

    assert "not published, nothing to revoke" in response.content.decode()
    assert SigningKey.objects.count() == keys_before


def test_staff_without_the_permissions_can_look_but_not_rotate_or_revoke(client, django_user_model, key):
    viewer = django_user_model.objects.create_user(
        username="viewer", password="x-long-password-1", is_staff=True
    )
    viewer.user_permissions.add(Permission.objects.get(codename="view_signingkey"))
    client.force_login(viewer)

    assert client.get(reverse(CHANGELIST)).status_code == 200
    assert "Rotate now" not in client.get(reverse(CHANGELIST)).content.decode()
    assert client.post(reverse("admin:keys_signingkey_rotate")).status_code == 403
    assert client.post(reverse("admin:keys_signingkey_revoke", args=[key.pk])).status_code == 403
    assert SigningKey.objects.get().phase == engine.ACTIVE


def test_keys_cannot_be_added_edited_deleted_or_reverted(admin_client, key):
    assert admin_client.get(reverse("admin:keys_signingkey_add")).status_code == 403
    assert admin_client.post(reverse("admin:keys_signingkey_delete", args=[key.pk])).status_code == 403
    admin_client.post(reverse("admin:keys_signingkey_change", args=[key.pk]), {"phase": engine.RETIRED})
    version = key.history.earliest().history_id
    revert = reverse("admin:keys_signingkey_simple_history", args=[key.pk, version])
    assert admin_client.post(revert, {"phase": engine.RETIRED}).status_code == 403
    assert SigningKey.objects.get().phase == engine.ACTIVE
