"""The GRAPH_* settings of group overage: checked at start-up, naming the variable."""

import pytest

from tests.support.settings import load_settings

CLIENT_ID = "88888888-8888-4888-8888-888888888888"


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"GRAPH_OVERAGE": "maybe"}, "GRAPH_OVERAGE"),
        ({"GRAPH_ENDPOINT": "http://graph.example.com"}, "GRAPH_ENDPOINT"),
        ({"GRAPH_ENDPOINT": "https://graph.microsoft.com/v1.0"}, "GRAPH_ENDPOINT"),
        ({"GRAPH_AUTHORITY": "http://login.example.com"}, "GRAPH_AUTHORITY"),
        # azure-identity refuses plain http even on loopback: say so at start, not at the first exchange.
        ({"GRAPH_AUTHORITY": "http://127.0.0.1:9000"}, "GRAPH_AUTHORITY"),
        ({"GRAPH_AUTHORITY": "https://login.microsoftonline.com/common"}, "GRAPH_AUTHORITY"),
        ({"GRAPH_CLIENT_SECRET": "a-secret"}, "GRAPH_CLIENT_ID"),
        ({"GRAPH_CLIENT_ID": "not-a-client-id"}, "GRAPH_CLIENT_ID"),
        ({"GRAPH_CACHE_SECONDS": "-1"}, "GRAPH_CACHE_SECONDS"),
        ({"GRAPH_CACHE_SECONDS": "3601"}, "GRAPH_CACHE_SECONDS"),
        ({"GRAPH_CACHE_SECONDS": "five"}, "GRAPH_CACHE_SECONDS"),
    ],
)
def test_it_refuses_a_bad_graph_setting_and_names_it(overrides, named):
    result = load_settings(**overrides)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"{named}:" in result.stderr


@pytest.mark.parametrize(
    "overrides",
    [
        {"GRAPH_OVERAGE": "true", "GRAPH_CLIENT_ID": CLIENT_ID, "GRAPH_CLIENT_SECRET": "a-secret"},
        {"GRAPH_OVERAGE": "true"},  # the system-assigned managed identity
        {"GRAPH_OVERAGE": "true", "GRAPH_CLIENT_ID": CLIENT_ID},  # a user-assigned managed identity
        {
            "GRAPH_OVERAGE": "true",
            "GRAPH_ENDPOINT": "https://graph.microsoft.us",
            "GRAPH_AUTHORITY": "https://login.microsoftonline.us",
            "GRAPH_CACHE_SECONDS": "0",
        },
    ],
    ids=["client-secret", "system-assigned", "user-assigned", "sovereign-cloud"],
)
def test_it_accepts_a_complete_graph_configuration(overrides):
    result = load_settings(**overrides)
    assert result.returncode == 0, result.stderr
