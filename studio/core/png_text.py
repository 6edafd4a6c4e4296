"""Reading the workflow a picture carries, from its PNG text chunks, in plain Python.

Saved pictures hold our workflow in a ``nuance`` chunk and, where the graph allows, ComfyUI's
API prompt in a ``prompt`` chunk (see ``nodes/sd/metadata.py``). Only the chunks are read, never
the pixels, so opening a big picture's workflow is instant and needs no imaging library.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

from studio.core.errors import WorkflowError
from studio.core.registry import NodeRegistry
from studio.core.workflow import Workflow, parse_workflow, resolve_workflow

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: The chunks that may hold a workflow, best first: ours keeps the layout, ComfyUI's does not.
WORKFLOW_CHUNKS = ("nuance", "workflow", "prompt")
#: A text chunk larger than this is not metadata we wrote; it is skipped rather than read.
MAX_TEXT_CHUNK = 64 * 1024 * 1024


def is_png(path: Path) -> bool:
    """Whether the file starts like a PNG (by content, whatever its name says)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(8) == PNG_SIGNATURE
    except OSError:
        return False


def read_text_chunks(path: Path) -> dict[str, str]:
    """Every tEXt, zTXt and iTXt chunk of a PNG, by keyword. Raises WorkflowError naming the file."""
    chunks: dict[str, str] = {}
    try:
        with open(path, "rb") as handle:
            if handle.read(8) != PNG_SIGNATURE:
                raise WorkflowError(f"{path}: is not a PNG picture")
            while True:
                header = handle.read(8)
                if len(header) < 8:
                    break
                length, kind = struct.unpack(">I4s", header)
                if kind in (b"tEXt", b"zTXt", b"iTXt") and length <= MAX_TEXT_CHUNK:
                    entry = _decode(kind, handle.read(length))
                    if entry is not None:
                        chunks.setdefault(*entry)
                else:
                    handle.seek(length, 1)
                handle.seek(4, 1)  # the CRC
                if kind == b"IEND":
                    break
    except OSError as exc:
        raise WorkflowError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return chunks


def _decode(kind: bytes, data: bytes) -> tuple[str, str] | None:
    """One text chunk as (keyword, text); None when it is malformed (a damaged chunk is skipped)."""
    keyword, sep, rest = data.partition(b"\0")
    if not sep:
        return None
    try:
        if kind == b"tEXt":
            return keyword.decode("latin-1"), rest.decode("latin-1")
        if kind == b"zTXt":
            return keyword.decode("latin-1"), zlib.decompress(rest[1:]).decode("latin-1")
        compressed, rest = rest[:1] == b"\1", rest[2:]
        _language, _, rest = rest.partition(b"\0")
        _translated, _, text = rest.partition(b"\0")
        return keyword.decode("latin-1"), (zlib.decompress(text) if compressed else text).decode("utf-8")
    except (zlib.error, UnicodeDecodeError):
        return None


def embedded_workflows(path: Path) -> list[tuple[dict[str, Any], str]]:
    """Every workflow JSON a picture carries with the chunk it came from, best first."""
    chunks = read_text_chunks(path)
    found = []
    for name in WORKFLOW_CHUNKS:
        text = chunks.get(name)
        if text is None:
            continue
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(data, dict) and data:
            found.append((data, name))
    return found


def embedded_workflow(path: Path) -> tuple[dict[str, Any], str] | None:
    """The best workflow JSON a picture carries and the chunk it came from; None when it has none."""
    found = embedded_workflows(path)
    return found[0] if found else None


def load_png_workflow(path: Path, registry: NodeRegistry | None = None) -> Workflow:
    """The workflow a picture carries, resolved like a workflow file; WorkflowError saying why not."""
    found = embedded_workflows(path)
    if not found:
        raise WorkflowError(
            f"{path}: this picture carries no workflow (it has no 'nuance', or ComfyUI 'workflow' or 'prompt', text "
            "chunk). Pictures saved by Save Image carry one; to use the picture itself, drop it on the canvas")
    first_error: WorkflowError | None = None
    for data, chunk in found:  # ComfyUI writes both its editor workflow and its prompt: the first that reads wins
        try:
            workflow = parse_workflow(data, origin=f"{path} ({chunk} chunk)")
        except WorkflowError as exc:
            first_error = first_error or exc
            continue
        if first_error is not None:
            workflow.warnings.append(f"{first_error}; read the '{chunk}' chunk instead")
        if registry is not None:
            resolve_workflow(workflow, registry)
        return workflow
    assert first_error is not None
    raise first_error
