"""The identity providers page as a platform admin meets it: from the navigation, read-only, at 1280 px."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from accounts.models import User
from accounts.provider_config import identity_providers_parse

PASSWORD = "a-long-local-password-for-the-browser"
DIRECTORY = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CUSTOMERS = "cccccccc-cccc-4ccc-8ccc-cccccccccccc"
FITS = "document.documentElement.scrollWidth <= document.documentElement.clientWidth"


def test_a_platform_admin_opens_the_identity_providers_from_the_navigation(
    page: Any, screenshot: Any, settings: Any
) -> None:
    settings.ENTRA_TENANT_ID = [DIRECTORY]
    settings.ENTRA_AUDIENCE = ["api://token-issuer"]
    settings.ENTRA_REQUIRED_SCOPES = ["access_as_user"]
    settings.IDENTITY_PROVIDERS = identity_providers_parse(
        {
            "providers": [
                {
                    "name": "customers",
                    "kind": "entra-external-id",
                    "tenant_id": CUSTOMERS,
                    "audiences": ["c1c1c1c1-0000-4000-8000-000000000001"],
                    "required_scopes": ["tokens.exchange"],
                },
                {
                    "name": "consumers",
                    "kind": "azure-ad-b2c",
                    "tenant_id": "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb",
                    "tenant_name": "fabrikamb2c",
                    "user_flows": [
                        "B2C_1_signupsignin",
                        "B2C_1A_signup_signin_with_a_long_custom_policy_name",
                    ],
                    "audiences": ["b1b1b1b1-0000-4000-8000-000000000001"],
                    "required_scopes": ["tokens.exchange"],
                },
                {
                    "name": "okta",
                    "kind": "oidc",
                    "issuer": "https://acme.okta.com/oauth2/default",
                    "audiences": ["api://token-issuer"],
                    "required_scopes": ["tokens.exchange"],
                    "algorithms": ["ES256", "RS256"],
                    "groups_claim": "groups",
                },
            ]
        }
    )
    User.objects.create_superuser("platform-administrator", password=PASSWORD)
    page.goto("/admin/login/")
    page.fill("#id_username", "platform-administrator")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    page.locator("#content-main").get_by_role("link", name="Identity providers").click()

    expect(page).to_have_title("Identity providers | Token issuer")
    captions = [c.strip() for c in page.locator("#content-main caption").all_text_contents()]
    assert captions == [DIRECTORY, "customers", "consumers", "okta"]
    expect(page.locator("#provider-customers")).to_contain_text(
        f"https://{CUSTOMERS}.ciamlogin.com/{CUSTOMERS}/v2.0"
    )
    expect(page.locator("#provider-consumers")).to_contain_text(
        "B2C_1A_signup_signin_with_a_long_custom_policy_name"
    )
    expect(page.locator("#provider-okta")).to_contain_text("ES256, RS256")
    expect(page.locator("#content-main form")).to_have_count(0)
    screenshot("identity-providers")
    assert page.evaluate(FITS), "the providers page scrolls sideways at 1280 px"
