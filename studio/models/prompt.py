"""Prompt-weighting syntax: turns a prompt into weighted text, embedding and BREAK segments.

Pure Python (no torch), so the editor can use it to highlight a prompt as the user types.

Syntax (the A1111 / ComfyUI conventions users already know):

``(text:1.3)``
    explicit weight: the text's weight is 1.3. Any decimal number works,
    ``(a:0.5)``, ``(a:1)``, ``(a:.8)``, ``(a: 1.2 )``, negative ones too (``(a:-1)``).
``(text)``
    emphasis, weight × 1.1. A colon not followed by a number is plain text: ``(a:b)`` is
    "a:b" × 1.1.
``[text]``
    de-emphasis, weight ÷ 1.1. (A1111's prompt editing ``[a:b:0.5]`` is not supported: the
    brackets de-emphasise the literal text "a:b:0.5".)
nesting
    emphasis multiplies: ``((a))`` is 1.1², ``[(a)]`` is 1.0; an explicit weight replaces
    what the brackets around it give: ``((a:1.5))`` is 1.5 and ``(a (b:0.5))`` gives b 0.5.
    This is ComfyUI's rule, so workflows from ComfyUI give the same pictures; AUTOMATIC1111
    multiplies instead (1.65). Both agree on every prompt without nested explicit weights.
``\\(``  ``\\)``  ``\\[``  ``\\]``  ``\\\\``
    a literal bracket or backslash. Any other backslash is kept as it is.
unbalanced brackets
    are text: a ``(`` or ``[`` that is never closed, and a ``)`` or ``]`` that closes nothing
    (or does not match the innermost open bracket), stay in the prompt as characters. Parsing
    never fails.
``embedding:name``
    a textual-inversion embedding from the embeddings folders. The name may hold sub-folders
    and an extension (``embedding:styles/ink.safetensors``) and ends at whitespace, a comma or
    a bracket. It must start a word (``myembedding:x`` is text). It takes the weight of the
    brackets around it: ``(embedding:ink:1.2)``.
``BREAK``
    upper case, as a whole word: ends the current 75-token chunk and starts a new one.

``parse_prompt`` returns the segments in order; text keeps its commas and whitespace, and
neighbouring text segments of equal weight are merged (as A1111 does).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["DEEMPHASIS", "EMPHASIS", "Segment", "parse_prompt"]

EMPHASIS = 1.1
DEEMPHASIS = 1 / 1.1

_CLOSERS = {"(": ")", "[": "]"}
_ESCAPABLE = frozenset("()[]\\")
_EXPLICIT_WEIGHT = re.compile(r":\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*$")
_DELIMITERS = r"\s,()\[\]"
# A BREAK keyword (a whole word) or an embedding reference (starting a word).
_SPECIAL = re.compile(rf"(?<!\w)BREAK(?!\w)|(?<![^{_DELIMITERS}])embedding:(?P<name>[^{_DELIMITERS}]+)")


@dataclass(frozen=True)
class Segment:
    """One piece of a parsed prompt.

    ``text`` is the literal text (for an embedding, ``embedding:name``; for a break, ``BREAK``);
    ``embedding`` is the embedding's name, or None; ``is_break`` marks a chunk break.
    """

    text: str
    weight: float = 1.0
    embedding: str | None = None
    is_break: bool = False


class _Group:
    """A bracket group while parsing; ``opener`` is None for the whole prompt."""

    __slots__ = ("children", "opener")

    def __init__(self, opener: str | None):
        self.opener = opener
        self.children: list[str | _Group] = []


def _build_tree(text: str) -> _Group:
    root = _Group(None)
    stack = [root]
    buffer: list[str] = []

    def flush() -> None:
        if buffer:
            stack[-1].children.append("".join(buffer))
            buffer.clear()

    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in _ESCAPABLE:
            buffer.append(text[i + 1])
            i += 2
            continue
        if char in _CLOSERS:
            flush()
            stack.append(_Group(char))
        elif char in (")", "]") and len(stack) > 1 and _CLOSERS[stack[-1].opener] == char:
            flush()
            closed = stack.pop()
            stack[-1].children.append(closed)
        else:
            buffer.append(char)
        i += 1
    flush()
    # Never-closed groups dissolve into their parent: the opener becomes text.
    while len(stack) > 1:
        unclosed = stack.pop()
        stack[-1].children.extend([unclosed.opener, *unclosed.children])
    return root


def _group_weight(group: _Group, outer: float) -> float:
    """The weight inside a group: an explicit ``:number`` (stripped from the text) replaces the
    outer weight, as ComfyUI does; brackets otherwise multiply it."""
    if group.opener == "[":
        return outer * DEEMPHASIS
    if group.children and isinstance(group.children[-1], str):
        match = _EXPLICIT_WEIGHT.search(group.children[-1])
        if match:
            group.children[-1] = group.children[-1][: match.start()]
            return float(match.group(1))
    return outer * EMPHASIS


def _flatten(group: _Group, weight: float, out: list[tuple[str, float]]) -> None:
    pending: list[str] = []  # neighbouring strings (e.g. from a dissolved group) form one piece
    for child in group.children:
        if isinstance(child, str):
            pending.append(child)
            continue
        if pending:
            out.append(("".join(pending), weight))
            pending = []
        _flatten(child, _group_weight(child, weight), out)
    if pending:
        out.append(("".join(pending), weight))


def _split_special(text: str, weight: float) -> list[Segment]:
    segments: list[Segment] = []
    position = 0
    for match in _SPECIAL.finditer(text):
        if match.start() > position:
            segments.append(Segment(text[position : match.start()], weight))
        name = match.group("name")
        if name is None:
            segments.append(Segment("BREAK", 1.0, is_break=True))
        else:
            segments.append(Segment(match.group(0), weight, embedding=name))
        position = match.end()
    if position < len(text):
        segments.append(Segment(text[position:], weight))
    return segments


def parse_prompt(text: str) -> list[Segment]:
    """Split a prompt into weighted segments (see the module docstring for the syntax)."""
    pieces: list[tuple[str, float]] = []
    _flatten(_build_tree(text), 1.0, pieces)
    merged: list[Segment] = []
    for piece, weight in pieces:
        for segment in _split_special(piece, weight):
            previous = merged[-1] if merged else None
            plain = segment.embedding is None and not segment.is_break
            if (
                plain
                and previous is not None
                and previous.embedding is None
                and not previous.is_break
                and previous.weight == segment.weight
            ):
                merged[-1] = Segment(previous.text + segment.text, segment.weight)
            elif segment.text or not plain:
                merged.append(segment)
    return merged
