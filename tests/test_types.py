"""Socket types: what may be wired to what, and how a refusal reads to the user."""

from __future__ import annotations

import pytest

from studio.core.types import (
    ANY,
    connection_problem,
    describe_type,
    is_compatible,
    is_valid_type_name,
    type_members,
)


@pytest.mark.parametrize(
    ("output_type", "input_type"),
    [
        ("INT", "INT"),
        ("IMAGE", "IMAGE"),
        ("INT", "INT|FLOAT"),
        ("FLOAT", "INT|FLOAT"),
        ("INT|FLOAT", "INT|FLOAT"),
        ("INT|FLOAT", "FLOAT|INT"),
        ("INT|FLOAT", "INT|FLOAT|STRING"),
        ("INT | FLOAT", "INT|FLOAT"),
        # The wildcard matches anything, on either side.
        ("IMAGE", ANY),
        (ANY, "IMAGE"),
        (ANY, ANY),
        ("INT|FLOAT", ANY),
        (ANY, "INT|FLOAT"),
        ("INT|*", "IMAGE"),
    ],
)
def test_compatible_pairs(output_type, input_type):
    assert is_compatible(output_type, input_type)
    assert connection_problem(output_type, input_type) is None


@pytest.mark.parametrize(
    ("output_type", "input_type"),
    [
        ("IMAGE", "INT"),
        ("INT", "FLOAT"),
        ("FLOAT", "INT"),
        ("IMAGE", "MASK"),
        ("STRING", "INT|FLOAT"),
        # A union output might hand over any of its members, so every member must be accepted.
        ("INT|FLOAT", "INT"),
        ("INT|FLOAT", "FLOAT"),
        ("INT|STRING", "INT|FLOAT"),
        # Type names are case-sensitive.
        ("int", "INT"),
    ],
)
def test_incompatible_pairs(output_type, input_type):
    assert not is_compatible(output_type, input_type)
    assert connection_problem(output_type, input_type) is not None


def test_compatibility_is_not_symmetric_for_unions():
    assert is_compatible("INT", "INT|FLOAT")
    assert not is_compatible("INT|FLOAT", "INT")


def test_refusal_reads_in_plain_english():
    message = connection_problem("IMAGE", "INT", input_label="Steps", output_label="Load Image")
    assert message == "Steps expects INT but Load Image gives IMAGE"


def test_refusal_spells_out_unions():
    message = connection_problem("STRING", "INT|FLOAT", input_label="Value", output_label="Prompt")
    assert message == "Value expects INT or FLOAT but Prompt gives STRING"
    message = connection_problem("INT|FLOAT|STRING", "INT", input_label="Steps", output_label="Any Number")
    assert message == "Steps expects INT but Any Number gives INT, FLOAT or STRING"


def test_refusal_has_default_labels():
    message = connection_problem("IMAGE", "LATENT")
    assert message is not None
    assert "LATENT" in message and "IMAGE" in message
    assert message.index("LATENT") < message.index("IMAGE")


@pytest.mark.parametrize(
    ("type_name", "expected"),
    [
        ("INT", "INT"),
        ("INT|FLOAT", "INT or FLOAT"),
        ("INT|FLOAT|STRING", "INT, FLOAT or STRING"),
        (" INT | FLOAT ", "INT or FLOAT"),
        (ANY, "any type"),
        ("INT|*", "any type"),
    ],
)
def test_describe_type(type_name, expected):
    assert describe_type(type_name) == expected


def test_type_members():
    assert type_members("INT") == frozenset({"INT"})
    assert type_members("INT|FLOAT") == frozenset({"INT", "FLOAT"})
    assert type_members(" INT | FLOAT ") == frozenset({"INT", "FLOAT"})
    assert type_members(ANY) is None
    assert type_members("IMAGE|*") is None


@pytest.mark.parametrize("name", ["INT", "INT|FLOAT", ANY, "CONTROL_NET", "INT | FLOAT"])
def test_valid_type_names(name):
    assert is_valid_type_name(name)


@pytest.mark.parametrize("name", ["", "   ", "INT|", "|INT", "INT||FLOAT", "MY TYPE", None, 3, ["INT"]])
def test_invalid_type_names(name):
    assert not is_valid_type_name(name)
