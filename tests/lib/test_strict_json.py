"""The duplicate-member hook: a JSON object that names a member twice is refused, at any depth."""

import json

import pytest

from lib.strict_json import DuplicateMember, unique_members


def test_it_keeps_an_object_whose_names_are_unique():
    assert json.loads('{"a": 1, "b": {"a": 2}}', object_pairs_hook=unique_members) == {"a": 1, "b": {"a": 2}}


@pytest.mark.parametrize(
    ("text", "name"),
    [('{"a": 1, "a": 1}', "a"), ('{"a": 1, "b": 2, "a": 3}', "a"), ('[{"x": {"k": 1, "k": 2}}]', "k")],
)
def test_it_refuses_a_member_named_twice_and_names_it(text, name):
    with pytest.raises(DuplicateMember, match=f"duplicate key '{name}' in a JSON object") as refused:
        json.loads(text, object_pairs_hook=unique_members)

    assert refused.value.name == name


def test_a_refusal_is_a_value_error_like_any_malformed_json():
    with pytest.raises(ValueError):
        json.loads('{"a": 1, "a": 2}', object_pairs_hook=unique_members)
