"""Workflow files: reading, migrating and writing graphs as JSON.

Loading has two phases. ``parse`` turns JSON into a :class:`Workflow` (structure only, checked
against ``resources/schema/workflow.schema.json``); ``resolve`` matches node types against a
registry, follows aliases and migrates old node versions. Node types that are not installed stay
in the graph as placeholders and are written back unchanged, so opening a workflow on a machine
that lacks a plugin never destroys part of it.

ComfyUI's API-format prompt JSON (``{"id": {"class_type": ..., "inputs": ...}}``) is read too, and
ComfyUI's editor files (see :mod:`studio.core.comfy_ui`); a PNG is read through the workflow it carries.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from studio.core.errors import WorkflowError
from studio.core.graph import Graph, GraphNode, NodeMode
from studio.core.registry import NodeRegistry
from studio.core.resources import resource_path

FORMAT = "nuance.workflow"
FORMAT_VERSION = 1
_NODE_KEYS = ("id", "type", "version", "mode", "title", "inputs")


@dataclass
class Workflow:
    """A graph plus what surrounds it in a file: UI layout, metadata, where it came from."""

    graph: Graph
    ui: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    source_format: str = FORMAT
    #: Things the loader fixed or noticed, for the user to read (never silently dropped data).
    warnings: list[str] = field(default_factory=list)
    #: Ids of nodes whose type no installed node provides (kept, and saved unchanged).
    placeholders: list[str] = field(default_factory=list)

    @property
    def base_dir(self) -> Path | None:
        """Folder that relative file paths in the workflow are resolved against."""
        return None if self.path is None else self.path.parent


@lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema

    schema = json.loads(resource_path("schema", "workflow.schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def _json_path(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def load_workflow(source: str | os.PathLike[str] | dict[str, Any], registry: NodeRegistry | None = None) -> Workflow:
    """Read a workflow from a path or an already-parsed dict, then resolve it if given a registry."""
    if isinstance(source, dict):
        workflow = parse_workflow(source)
    else:
        path = Path(source)
        from studio.core.png_text import is_png, load_png_workflow

        if path.suffix.lower() == ".png" or (path.suffix.lower() != ".json" and is_png(path)):  # a picture's workflow
            workflow = load_png_workflow(path)
        else:
            workflow = parse_workflow(read_json(path), origin=str(path))
        workflow.path = path.resolve()
    if registry is not None:
        resolve_workflow(workflow, registry)
    return workflow


def read_json(path: Path) -> Any:
    """Read a JSON file, turning every way it can go wrong into a WorkflowError naming the file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise WorkflowError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise WorkflowError(f"{path}: is a folder, not a workflow file") from None
    except OSError as exc:
        raise WorkflowError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise WorkflowError(f"{path}: is not UTF-8 text (bad byte at offset {exc.start}); is it really a workflow?") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkflowError(f"{path}: is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except RecursionError:
        raise WorkflowError(f"{path}: is nested too deeply to be a workflow") from None


def parse_workflow(data: Any, origin: str = "workflow") -> Workflow:
    """Phase one: structure only. Accepts our format, ComfyUI's editor format and its API format."""
    if not isinstance(data, dict):
        raise WorkflowError(f"{origin}: a workflow is a JSON object, got {type(data).__name__}")
    if "format" in data:
        if data["format"] != FORMAT:
            raise WorkflowError(f"{origin}: not a Nuance Studio workflow (its format is {data['format']!r})")
        return _parse_nuance(data, origin)
    from studio.core.comfy_ui import is_comfy_ui, parse_comfy_ui

    if is_comfy_ui(data):
        return parse_comfy_ui(data, origin)
    if data and all(isinstance(v, dict) and "class_type" in v for v in data.values()):
        return _parse_comfy_api(data, origin)
    raise WorkflowError(
        f"{origin}: not a workflow: expected a Nuance Studio workflow (with \"format\": \"{FORMAT}\"), "
        "a ComfyUI workflow or a ComfyUI API-format prompt")


def _parse_nuance(data: dict[str, Any], origin: str) -> Workflow:
    version = data.get("version")
    if isinstance(version, (int, float)) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise WorkflowError(
            f"{origin}: was written by a newer Nuance Studio (workflow version {version}; this one reads "
            f"up to version {FORMAT_VERSION}); update Nuance Studio to open it")
    try:
        errors = sorted(_validator().iter_errors(data), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    except RecursionError:
        raise WorkflowError(f"{origin}: is nested too deeply to be a workflow") from None
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        raise WorkflowError(f"{origin}: {_json_path(first.absolute_path)}: {first.message}{more}")

    workflow = Workflow(Graph(), ui=dict(data.get("ui", {})), meta=dict(data.get("meta", {})))
    graph = workflow.graph
    for index, item in enumerate(data["graph"]["nodes"]):
        if item["id"] in graph.nodes:
            raise WorkflowError(f"{origin}: graph.nodes[{index}]: node id {item['id']!r} is used twice")
        node = graph.add_node(
            item["type"], dict(item.get("inputs", {})), id=item["id"],
            mode=item.get("mode", "normal"), title=item.get("title"),
            # The schema counts 1.0 as an integer; keep integers integers.
            version=None if item.get("version") is None else int(item["version"]),
            extra={k: v for k, v in item.items() if k not in _NODE_KEYS},
        )
        node.loaded_keys = frozenset(k for k in _NODE_KEYS if k in item)
    for index, item in enumerate(data["graph"]["links"]):
        where = f"{origin}: graph.links[{index}]"
        if item["id"] in graph.links:
            raise WorkflowError(f"{where}: link id {item['id']!r} is used twice")
        _add_link(workflow, where, item["id"], item["from_node"], int(item["from_output"]), item["to_node"],
                  item["to_input"])
    return workflow


def _add_link(workflow: Workflow, where: str, link_id: str | None, from_node: str, from_output: int,
              to_node: str, to_input: str) -> None:
    graph = workflow.graph
    for end in (from_node, to_node):
        if end not in graph.nodes:
            workflow.warnings.append(f"{where}: dropped a link to node {end!r}, which is not in the workflow")
            return
    if graph.link_into(to_node, to_input) is not None:
        workflow.warnings.append(
            f"{where}: input '{to_input}' of node {to_node} had two links; kept the last one")
    graph.connect(from_node, from_output, to_node, to_input, id=link_id)


def _parse_comfy_api(data: dict[str, Any], origin: str) -> Workflow:
    workflow = Workflow(Graph(), source_format="comfyui-api")
    graph = workflow.graph
    pending_links = []
    for node_id, item in data.items():
        where = f"{origin}: node {node_id}"
        class_type = item.get("class_type")
        if not isinstance(class_type, str) or not class_type:
            raise WorkflowError(f"{where}: class_type must be a non-empty string")
        inputs = item.get("inputs", {})
        if not isinstance(inputs, dict):
            raise WorkflowError(f"{where}: inputs must be an object")
        meta = item.get("_meta")
        title = meta.get("title") if isinstance(meta, dict) and isinstance(meta.get("title"), str) else None
        constants = {}
        for name, value in inputs.items():
            if _is_api_link(value):
                pending_links.append((where, str(value[0]), value[1], node_id, name))
            else:
                constants[name] = value
        graph.add_node(class_type, constants, id=node_id, title=title)
    for where, from_node, from_output, to_node, to_input in pending_links:
        _add_link(workflow, where, None, from_node, from_output, to_node, to_input)
    return workflow


def _is_api_link(value: Any) -> bool:
    return (
        isinstance(value, list) and len(value) == 2
        and isinstance(value[0], (str, int)) and not isinstance(value[0], bool)
        and isinstance(value[1], int) and not isinstance(value[1], bool) and value[1] >= 0
    )


def resolve_workflow(workflow: Workflow, registry: NodeRegistry) -> Workflow:
    """Phase two: follow aliases, apply input renames and version migrations, mark placeholders."""
    graph = workflow.graph
    workflow.placeholders = []
    for node in list(graph.nodes.values()):
        spec = registry.spec(node.type)
        if spec is not None and "comfy" in node.extra and node.version is None:
            from studio.core.comfy_ui import foreign_type

            renamed = foreign_type(node, spec)
            if renamed is not None:
                workflow.warnings.append(
                    f"node {node.id}: this {node.type} comes from a ComfyUI custom node pack, not ours; "
                    f"kept as a placeholder named {renamed}")
                node.type = renamed
                spec = registry.spec(renamed)
        if spec is None:
            workflow.placeholders.append(node.id)
            continue
        node.type = spec.type
        renames = {old: new for old, new in spec.cls.RENAMED_INPUTS.items()}
        if renames:
            _rename_inputs(graph, node, renames)
        if "comfy" in node.extra and node.version is None:
            from studio.core.comfy_ui import apply_widget_values

            apply_widget_values(workflow, node, spec)  # ComfyUI's values match the node as it is now
            node.version = spec.version
            continue
        saved_version = node.version or 1
        if saved_version < spec.version:
            try:
                migrated = spec.cls.migrate(saved_version, dict(node.inputs))
            except Exception as exc:  # a plugin's migrate() must not make the file unopenable
                workflow.warnings.append(
                    f"node {node.id} ({node.type}): could not migrate from version {saved_version}: {exc}; "
                    "kept its saved values")
            else:
                if isinstance(migrated, dict):
                    node.inputs = migrated
        if saved_version > spec.version:
            workflow.warnings.append(
                f"node {node.id} ({node.type}) was saved by a newer version ({saved_version}) of the node "
                f"than the installed one ({spec.version}); its values may not all apply")
        else:
            node.version = spec.version
    graph.revision += 1
    return workflow


def _rename_inputs(graph: Graph, node: GraphNode, renames: dict[str, str]) -> None:
    for old, new in renames.items():
        if old in node.inputs and new not in node.inputs:
            node.inputs[new] = node.inputs.pop(old)
        link = graph.link_into(node.id, old)
        if link is not None and graph.link_into(node.id, new) is None:
            graph.remove_link(link.id)
            graph.connect(link.from_node, link.from_output, node.id, new, id=link.id)


def workflow_to_dict(workflow: Workflow) -> dict[str, Any]:
    """The JSON form. Placeholders are written exactly as they were read."""
    nodes = []
    for node in workflow.graph.nodes.values():
        spelled = node.loaded_keys
        item: dict[str, Any] = {"id": node.id, "type": node.type}
        if node.version is not None:
            item["version"] = node.version
        if node.mode is not NodeMode.NORMAL or "mode" in spelled:
            item["mode"] = node.mode.value
        if node.title is not None or "title" in spelled:
            item["title"] = node.title
        if node.inputs or "inputs" in spelled or not spelled:
            item["inputs"] = node.inputs
        item.update(node.extra)
        nodes.append(item)
    links = [
        {"id": link.id, "from_node": link.from_node, "from_output": link.from_output,
         "to_node": link.to_node, "to_input": link.to_input}
        for link in workflow.graph.links.values()
    ]
    data: dict[str, Any] = {"format": FORMAT, "version": FORMAT_VERSION, "graph": {"nodes": nodes, "links": links}}
    if workflow.ui:
        data["ui"] = workflow.ui
    if workflow.meta:
        data["meta"] = workflow.meta
    return data


def save_workflow(workflow: Workflow, path: str | os.PathLike[str]) -> Path:
    """Write atomically (temporary file, then rename) so a crash never leaves half a file."""
    target = Path(path)
    text = json.dumps(workflow_to_dict(workflow), indent=2, ensure_ascii=False) + "\n"
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        # mkstemp makes the file private; give it the permissions a normally saved file has.
        os.chmod(tmp, target.stat().st_mode & 0o777 if target.exists() else 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    workflow.path = target.resolve()
    return target


def to_comfy_api(graph: Graph, node_ids: list[str] | None = None) -> dict[str, Any] | None:
    """The graph as a ComfyUI API-format prompt, or None when the graph does not allow one.

    ComfyUI's prompt has no node modes, so a graph that relies on muted or bypassed nodes among
    ``node_ids`` (default: all) cannot be written faithfully and gives None.
    """
    ids = list(graph.nodes) if node_ids is None else node_ids
    prompt: dict[str, Any] = {}
    for node_id in ids:
        node = graph.nodes[node_id]
        if node.mode is not NodeMode.NORMAL:
            return None
        inputs: dict[str, Any] = dict(node.inputs)
        for link in graph.links_into(node_id):
            inputs[link.to_input] = [link.from_node, link.from_output]
        item: dict[str, Any] = {"class_type": node.type, "inputs": inputs}
        if node.title:
            item["_meta"] = {"title": node.title}
        prompt[node_id] = item
    return prompt
