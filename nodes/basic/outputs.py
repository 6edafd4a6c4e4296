"""Output nodes for plain values: show one in the editor, or save text to a file."""

from __future__ import annotations

import json
from typing import Any

from studio.api import ANY, Input, Node, RunContext, String


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float)) or value is None:
        return json.dumps(value)
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"{type(value).__name__} of shape {tuple(shape)}"
    return repr(value)


class PreviewAny(Node):
    NAME = "PreviewAny"
    DISPLAY_NAME = "Preview Any"
    CATEGORY = "utils"
    DESCRIPTION = "Show a value as text on the node (and in the command line's output)."
    INPUTS = [Input("source", ANY)]
    OUTPUT_NODE = True

    def run(self, ctx: RunContext, source: Any) -> None:
        ctx.show(text=_as_text(source))


class SaveText(Node):
    NAME = "SaveText"
    DISPLAY_NAME = "Save Text"
    CATEGORY = "utils"
    DESCRIPTION = "Write text to a new file in the output folder (existing files are never overwritten)."
    INPUTS = [String("text", "", multiline=True), String("filename_prefix", "nuance",
              tooltip="File name start; may include sub-folders such as notes/day1")]
    OUTPUT_NODE = True

    def run(self, ctx: RunContext, text: str, filename_prefix: str) -> None:
        path = ctx.reserve_output_file(filename_prefix, "txt")
        path.write_text(text, encoding="utf-8")
        ctx.show(text=text, files=[str(path)])


NODES = [PreviewAny, SaveText]
