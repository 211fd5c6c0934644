"""The pure engines of search and smart paste: words, time phrases, matching, and the model's loading."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from authz.search.dates import date_at, period_at
from authz.search.interpret import MAX_SUBJECTS_PER_WORD, interpret
from authz.search.matching import Item, Matcher
from authz.search.paste import propose
from authz.search.tokens import MAX_WORDS, tokenise

TODAY = date(2027, 1, 10)  # a Sunday
ROOT = Path(__file__).resolve().parents[2]


def matcher(*extra: Item) -> Matcher:
    return Matcher.build(
        [
            Item("tenant", "acme", ("acme", "Acme Corp")),
            Item("role", "viewer", ("viewer", "Viewer"), ("orders.read",)),
            Item("role", "editor", ("editor", "Editor"), ("orders.read", "orders.write")),
            Item("permission", "orders.read", ("orders.read", "Read orders")),
            Item("permission", "orders.write", ("orders.write", "Change orders")),
            Item("audience", "api://orders", ("api://orders", "Orders API"), ("orders.read", "orders.write")),
            *extra,
        ]
    )


def ask(question: str, found: Matcher | None = None) -> dict:
    return interpret(question, found or matcher(), today=TODAY).as_json()


@pytest.mark.parametrize(
    ("words", "days", "past"),
    [
        ("next week", 7, False),
        ("in 30 days", 30, False),
        ("within the next two weeks", 14, False),
        ("for a fortnight", 14, False),
        ("in the last 7 days", 7, True),
        ("this month", 30, False),
        ("tomorrow", 1, False),
        ("before 31 january", 21, False),
        ("by 2027-01-15", 5, False),
    ],
)
def test_it_reads_periods(words: str, days: int, past: bool) -> None:
    period = period_at(words.split(), 0, TODAY)
    assert period is not None and (period.days, period.past, period.length) == (
        days,
        past,
        len(words.split()),
    )


@pytest.mark.parametrize("words", ["in acme", "week", "for bob", "in 99999 days", "before christmas"])
def test_other_words_are_no_period(words: str) -> None:
    assert period_at(words.split(), 0, TODAY) is None


@pytest.mark.parametrize(
    ("words", "day"),
    [
        ("31 march", date(2027, 3, 31)),
        ("march 31st", date(2027, 3, 31)),
        ("1st of january", date(2028, 1, 1)),  # passed this year: the next one
        ("15 april 2027", date(2027, 4, 15)),
        ("2027-02-28", date(2027, 2, 28)),
        ("friday", date(2027, 1, 15)),
        ("next monday", date(2027, 1, 11)),
    ],
)
def test_it_reads_dates(words: str, day: date) -> None:
    assert date_at(words.split(), 0, TODAY) == (day, len(words.split()))


def test_impossible_dates_are_none() -> None:
    assert date_at(["31", "february"], 0, TODAY) is None
    assert date_at(["2027-13-01"], 0, TODAY) is None


def test_tokens_keep_where_they_stood() -> None:
    text = "Bob's access to api://orders, 2F0E3B4C-8A1D-4C5E-9F60-7B8C9D0E1F2A."
    tokens = tokenise(text)
    assert [t.text for t in tokens] == [
        "bob",
        "access",
        "to",
        "api://orders",
        "2f0e3b4c-8a1d-4c5e-9f60-7b8c9d0e1f2a",
    ]
    assert [t.kind for t in tokens][-2:] == ["uri", "guid"]
    assert text[tokens[0].start : tokens[0].end] == "Bob's"


def test_a_long_text_is_read_up_to_a_limit() -> None:
    assert len(tokenise("word " * (MAX_WORDS + 50))) == MAX_WORDS


def test_an_action_with_its_resource_is_one_permission() -> None:
    assert ask("who can change orders in acme")["filters"] == {
        "tenant": ["acme"],
        "permission": ["orders.write"],
    }


def test_an_action_asked_of_an_audience_is_its_permission() -> None:
    assert ask("who can read the orders api")["filters"] == {"permission": ["orders.read"]}


def test_a_resource_alone_names_its_audience() -> None:
    assert ask("access to orders")["filters"] == {"audience": ["api://orders"]}


def test_a_role_is_named_by_its_slug_or_head_word_only() -> None:
    assert ask("editors")["filters"] == {"role": ["editor"]}
    assert ask("roles")["filters"] == {}


def test_a_word_naming_too_many_people_is_not_understood() -> None:
    people = [
        Item("subject", f"00000000-0000-4000-8000-{n:012d}", (f"John Doe{n}",), ("p", "user"))
        for n in range(MAX_SUBJECTS_PER_WORD + 1)
    ]
    answer = ask("john's access", matcher(*people))
    assert answer["filters"] == {} and answer["unmatched"] == ["john's"]


def test_a_group_is_found_by_its_whole_label_only() -> None:
    group = Item("subject", "9a000000-0000-4000-8000-00000000000a", ("Warehouse staff",), ("p", "group"))
    assert ask("warehouse staff", matcher(group))["filters"] == {"subject": [group.value]}
    assert ask("staff", matcher(group))["unmatched"] == ["staff"]


def test_typing_slips_are_forgiven_but_not_short_words() -> None:
    assert ask("grants in acmee")["filters"] == {"tenant": ["acme"]}
    assert ask("grants in acx")["unmatched"] == ["acx"]


def test_a_principal_question_about_something_else_lists_grants() -> None:
    assert ask("principals in acme")["target"] == "grants"


def test_paste_leaves_a_tie_between_roles_to_the_admin() -> None:
    twin = Item("role", "reader", ("reader", "Reader"), ("orders.read",))
    proposal = propose("read orders in acme", matcher(twin), now=datetime(2027, 1, 10, tzinfo=UTC))
    assert proposal.role is None
    assert any("reader, viewer" in note for note in proposal.notes)


def test_paste_reads_a_duration_from_the_start_it_names() -> None:
    proposal = propose(
        "viewer in acme from 1 March for two weeks", matcher(), now=datetime(2027, 1, 10, tzinfo=UTC)
    )
    assert proposal.valid_from == datetime(2027, 3, 1, tzinfo=UTC)
    assert proposal.valid_until == datetime(2027, 3, 15, tzinfo=UTC)


def test_paste_does_not_read_a_guid_as_a_ticket() -> None:
    proposal = propose(
        "2F0E3B4C-8A1D-4C5E-9F60-7B8C9D0E1F2A viewer", matcher(), now=datetime(2027, 1, 10, tzinfo=UTC)
    )
    assert proposal.reason == ""


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "DEBUG": "true", **env}
    return subprocess.run(  # noqa: S603 - this interpreter, the test's own code
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )


def test_the_model_loads_from_its_package_without_the_network(tmp_path: Path) -> None:
    pytest.importorskip("wordllama", reason="the model package (requirements.in) is not installed")
    code = (
        "import socket\n"
        "def refuse(*args, **kwargs): raise OSError('no network in this test')\n"
        "socket.socket.connect = refuse; socket.create_connection = refuse\n"
        "from authz.search.model import model_get, Neighbours\n"
        "model = model_get()\n"
        "print(Neighbours(model, ['delete', 'read']).nearest('deletion')[0][0])\n"
    )
    # An empty home: nothing cached from an earlier download can stand in for the package's files.
    result = _python(code, HOME=str(tmp_path), HF_HUB_OFFLINE="1", XDG_CACHE_HOME=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "delete"
    assert not any(tmp_path.iterdir()), "nothing written to a cache"


def test_starting_django_does_not_load_the_model() -> None:
    code = (
        "import sys, django, os\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings')\n"
        "django.setup()\n"
        "import config.urls\n"
        "print('wordllama' in sys.modules, 'numpy' in sys.modules)\n"
    )
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "False"
