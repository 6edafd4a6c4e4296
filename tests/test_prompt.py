"""The prompt-weighting parser: A1111/ComfyUI syntax, escapes, leniency, embeddings, BREAK."""

from __future__ import annotations

import pytest

from studio.models.prompt import Segment, parse_prompt


def plain(text: str, weight: float = 1.0) -> Segment:
    return Segment(text, weight)


def pairs(text: str) -> list[tuple[str, float]]:
    """(text, weight) of each segment, weights rounded so that 1.1 * 1.1 compares cleanly."""
    return [(s.text, round(s.weight, 6)) for s in parse_prompt(text)]


def test_plain_text_is_one_segment_with_its_punctuation_and_spacing():
    assert parse_prompt("a cat,  sitting\non a mat ") == [plain("a cat,  sitting\non a mat ")]


def test_empty_prompt_has_no_segments():
    assert parse_prompt("") == []


def test_explicit_weight():
    assert pairs("a (cat:1.5) b") == [("a ", 1.0), ("cat", 1.5), (" b", 1.0)]


@pytest.mark.parametrize(
    ("prompt", "weight"),
    [
        ("(a:0.5)", 0.5),
        ("(a:1)", 1.0),
        ("(a:2.)", 2.0),
        ("(a:.25)", 0.25),
        ("(a: 1.3 )", 1.3),
        ("(a:+1.2)", 1.2),
        ("(a:-1)", -1.0),
    ],
)
def test_explicit_weight_number_forms(prompt, weight):
    assert pairs(prompt) == [("a", weight)]


def test_round_brackets_emphasise_by_1_1():
    assert pairs("(a)") == [("a", 1.1)]


def test_square_brackets_deemphasise_by_1_1():
    [segment] = parse_prompt("[a]")
    assert segment.text == "a"
    assert segment.weight == pytest.approx(1 / 1.1)


def test_nesting_multiplies():
    assert pairs("((a))") == [("a", 1.21)]
    assert pairs("(((a)))") == [("a", 1.331)]
    assert pairs("[[a]]") == [("a", round(1 / 1.21, 6))]
    assert pairs("[(a)]") == [("a", 1.0)]


def test_explicit_weight_replaces_the_weight_of_surrounding_brackets_as_in_comfyui():
    assert pairs("((a:1.5))") == [("a", 1.5)]
    assert pairs("(a (b:2) c)") == [("a ", 1.1), ("b", 2.0), (" c", 1.1)]
    assert pairs("[x (y:0.5)]") == [("x ", round(1 / 1.1, 6)), ("y", 0.5)]
    # Emphasis inside an explicit weight still multiplies it.
    assert pairs("((a:1.5) (b))") == [("a", 1.5), (" ", 1.1), ("b", round(1.1 * 1.1, 6))]


def test_weight_applies_to_a_group_with_nested_groups():
    assert pairs("(a (b) :2)") == [("a ", 2.0), ("b", 2.2), (" ", 2.0)]


def test_colon_without_number_is_text():
    assert pairs("(a:b)") == [("a:b", 1.1)]
    assert pairs("(a:)") == [("a:", 1.1)]
    assert pairs("(a:1.2.3)") == [("a:1.2.3", 1.1)]
    assert pairs("(a:1.5 b)") == [("a:1.5 b", 1.1)]


def test_colon_outside_brackets_is_text():
    assert pairs("ratio 16:9, (a:1.2)") == [("ratio 16:9, ", 1.0), ("a", 1.2)]


def test_square_brackets_never_take_an_explicit_weight():
    assert pairs("[a:b:0.5]") == [("a:b:0.5", round(1 / 1.1, 6))]


def test_escapes_give_literal_characters():
    assert parse_prompt(r"\(a\) \[b\] c\\d") == [plain(r"(a) [b] c\d")]


def test_escaped_brackets_inside_a_weighted_group():
    assert pairs(r"(smile \(happy\):1.2)") == [("smile (happy)", 1.2)]


def test_escaped_backslash_before_a_bracket_still_opens_it():
    assert pairs(r"x\\(a)") == [("x\\", 1.0), ("a", 1.1)]


def test_other_backslashes_are_kept():
    assert parse_prompt(r"a\nb \x") == [plain(r"a\nb \x")]


@pytest.mark.parametrize(
    "prompt",
    ["(a", "a)", "((a)", "(a))", "[a", "a]", "(a]", "[a)", "(((", ")))", "(a [b)", "(", "]", "\\"],
)
def test_unbalanced_brackets_never_raise_and_keep_every_character(prompt):
    segments = parse_prompt(prompt)
    # Nothing is lost: the literal characters reappear in the text (minus closed brackets).
    text = "".join(s.text for s in segments)
    assert text.replace("(", "").replace(")", "").replace("[", "").replace("]", "") == prompt.replace("(", "").replace(
        ")", ""
    ).replace("[", "").replace("]", "")


def test_unclosed_bracket_is_text_at_the_outer_weight():
    assert pairs("(a") == [("(a", 1.0)]
    assert pairs("a)") == [("a)", 1.0)]
    assert pairs("((a)") == [("(", 1.0), ("a", 1.1)]
    assert pairs("(a))") == [("a", 1.1), (")", 1.0)]


def test_mismatched_closer_is_text():
    assert pairs("(a]") == [("(a]", 1.0)]
    assert pairs("(a] b)") == [("a] b", 1.1)]


def test_embedding_reference():
    segments = parse_prompt("a embedding:ink, b")
    assert segments == [plain("a "), Segment("embedding:ink", 1.0, "ink"), plain(", b")]


def test_embedding_name_with_subfolder_and_extension():
    [segment] = parse_prompt("embedding:styles/ink.safetensors")
    assert segment.embedding == "styles/ink.safetensors"


@pytest.mark.parametrize(("prompt", "name"), [("embedding:ink,x", "ink"), ("embedding:ink)", "ink"), ("embedding:ink\tx", "ink")])
def test_embedding_name_ends_at_whitespace_comma_or_bracket(prompt, name):
    assert parse_prompt(prompt)[0].embedding == name


def test_weighted_embedding():
    assert parse_prompt("(embedding:ink:1.3)") == [Segment("embedding:ink", 1.3, "ink")]
    assert parse_prompt("[embedding:ink]")[0].weight == pytest.approx(1 / 1.1)


def test_embedding_must_start_a_word():
    assert parse_prompt("myembedding:ink") == [plain("myembedding:ink")]
    assert parse_prompt("embedding: ink") == [plain("embedding: ink")]


def test_break_splits_and_keeps_surrounding_text():
    assert parse_prompt("a, b BREAK c") == [plain("a, b "), Segment("BREAK", 1.0, None, True), plain(" c")]


def test_break_must_be_an_uppercase_whole_word():
    assert parse_prompt("break BREAKING aBREAK Break") == [plain("break BREAKING aBREAK Break")]
    assert [s.is_break for s in parse_prompt("x,BREAK,y")] == [False, True, False]


def test_break_inside_brackets_still_breaks():
    assert [(s.text, s.is_break) for s in parse_prompt("(a BREAK b)")] == [("a ", False), ("BREAK", True), (" b", False)]


def test_adjacent_segments_of_equal_weight_are_merged():
    assert pairs("(a)(b)") == [("ab", 1.1)]
    assert pairs("a (b:1) c") == [("a b c", 1.0)]
    assert pairs("(a), (b)") == [("a", 1.1), (", ", 1.0), ("b", 1.1)]


def test_embeddings_and_breaks_are_never_merged():
    segments = parse_prompt("embedding:a embedding:b BREAK BREAK")
    assert [s.embedding for s in segments if s.embedding] == ["a", "b"]
    assert sum(s.is_break for s in segments) == 2


def test_empty_groups_give_no_segments():
    assert parse_prompt("()[](:1.5)") == []


def test_segments_are_frozen():
    segment = parse_prompt("a")[0]
    with pytest.raises(AttributeError):
        segment.weight = 2.0  # type: ignore[misc]
