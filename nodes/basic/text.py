"""Building text: concatenation, replacement and a template with named slots."""

from __future__ import annotations

import string
from typing import Any

from studio.api import ANY, Input, Node, Output, RunContext, String

FORMAT_SLOTS = ("a", "b", "c", "d")


class StringConcatenate(Node):
    NAME = "StringConcatenate"
    DISPLAY_NAME = "Concatenate"
    CATEGORY = "utils/string"
    DESCRIPTION = "Join two pieces of text, with an optional delimiter between them."
    INPUTS = [String("string_a", "", multiline=True), String("string_b", "", multiline=True),
              String("delimiter", "")]
    OUTPUTS = [Output("STRING", "STRING")]

    def run(self, ctx: RunContext, string_a: str, string_b: str, delimiter: str) -> str:
        return delimiter.join((string_a, string_b))


class StringReplace(Node):
    NAME = "StringReplace"
    DISPLAY_NAME = "Replace"
    CATEGORY = "utils/string"
    DESCRIPTION = "Replace every occurrence of find with replace."
    INPUTS = [String("string", "", multiline=True), String("find", ""), String("replace", "")]
    OUTPUTS = [Output("STRING", "STRING")]

    def run(self, ctx: RunContext, string: str, find: str, replace: str) -> str:
        return string.replace(find, replace) if find else string


class StringFormat(Node):
    NAME = "StringFormat"
    DISPLAY_NAME = "Format Text"
    CATEGORY = "utils/string"
    DESCRIPTION = ("Fill a template: {a}, {b}, {c} and {d} are replaced by the values wired into a–d, "
                   "with Python format specs such as {a:.2f} or {b:04d}. Write {{ and }} for braces.")
    INPUTS = [
        String("template", "{a}", multiline=True),
        *(Input(slot, ANY, optional=True) for slot in FORMAT_SLOTS),
    ]
    OUTPUTS = [Output("STRING", "STRING")]

    @classmethod
    def validate(cls, **inputs: Any) -> list[str]:
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(inputs["template"]) if f is not None]
        except ValueError as exc:
            return [f"the template is malformed: {exc}"]
        problems = []
        for name in fields:
            if name not in FORMAT_SLOTS:
                problems.append(f"the template uses {{{name}}}; only {{a}}, {{b}}, {{c}} and {{d}} are available")
            elif name not in inputs:
                problems.append(f"the template uses {{{name}}} but input {name} is not connected")
        return problems

    def run(self, ctx: RunContext, template: str, **values: Any) -> str:
        try:
            return template.format(**values)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"cannot fill the template: {exc}") from None


NODES = [StringConcatenate, StringReplace, StringFormat]
