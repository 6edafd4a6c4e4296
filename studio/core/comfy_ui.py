"""Reading ComfyUI's editor ("UI format") workflows: what ComfyUI's Save writes, schema 0.4 and 1.

Phase one (:func:`parse_comfy_ui`, no registry) turns the file into our graph and layout:

- nodes keep their id, type, title, mode (0 normal, 2 muted, 4 bypassed), position, size, colour
  and collapsed state; their positional ``widgets_values`` wait on the node (``extra["comfy"]``)
  for phase two, because which value belongs to which input depends on the node's declaration;
- links resolve their target slot through the target's ``inputs`` list (which names widget
  inputs too); ``Reroute`` nodes become bend points on the wires they carried;
- ``PrimitiveNode`` (one value shared by several inputs) becomes our Primitive node of its type,
  wired to every input it fed;
- ``Note`` and ``MarkdownNote`` become canvas notes, groups become groups;
- subgraphs are flattened into the graph (inner node ids ``<instance>:<inner>``) and kept
  together in a group named after the subgraph.

Phase two (:func:`apply_widget_values`, called by ``resolve_workflow``) maps the saved values onto
the node's widget inputs in ComfyUI's order: the extra "control after generate" value after a
seed, the upload button's value after LoadImage's picture, and so on. A node whose type is not
installed keeps everything it was saved with and is written back unchanged.
"""

from __future__ import annotations

import math
from typing import Any

from studio.core import layout
from studio.core.errors import InputValueError, WorkflowError
from studio.core.graph import Graph, GraphNode, NodeMode

#: Node types the ComfyUI editor adds that never reach its server.
REROUTE, PRIMITIVE, NOTES = "Reroute", "PrimitiveNode", ("Note", "MarkdownNote")
_MODES = {0: NodeMode.NORMAL, 2: NodeMode.MUTED, 4: NodeMode.BYPASSED}
SUBGRAPH_INPUT, SUBGRAPH_OUTPUT = "-10", "-20"
#: A PrimitiveNode becomes our primitive of the type it feeds.
_PRIMITIVES = {"INT": "PrimitiveInt", "FLOAT": "PrimitiveFloat", "BOOLEAN": "PrimitiveBoolean",
               "STRING": "PrimitiveString", "COMBO": "PrimitiveString"}

#: Markers in a widget sequence: the "control after generate" value, and values with no input.
CONTROL, SKIP = "#control", "#skip"
#: Where ComfyUI's widget order is not simply our widget inputs in order (plus a control after seeds).
SPECIAL_SEQUENCES: dict[str, tuple[str, ...]] = {
    "LoadImage": ("image", SKIP),                 # the picture, then the upload button's value
    "LoadImageMask": ("image", "channel", SKIP),
    "PrimitiveInt": ("value", CONTROL),           # declares control_after_generate on 'value'
    "PreviewAny": (SKIP, SKIP, SKIP),             # preview boxes and a display toggle
}
#: What ComfyUI's control values become here (ours: fixed, increment, randomize).
_CONTROL_VALUES = {"fixed": "fixed", "increment": "increment", "randomize": "randomize",
                   "decrement": "fixed", "increment-wrap": "increment", True: "randomize", False: "fixed"}
_IMAGE_SUFFIXES = (" [input]", " [output]", " [temp]")
MAX_DEPTH = 16


def is_comfy_ui(data: Any) -> bool:
    """Whether ``data`` looks like a ComfyUI editor workflow (nodes and links lists, no "format")."""
    return (isinstance(data, dict) and "format" not in data and isinstance(data.get("nodes"), list)
            and isinstance(data.get("links", []), list)
            and any(k in data for k in ("last_node_id", "last_link_id", "version", "state", "links")))


def parse_comfy_ui(data: dict[str, Any], origin: str) -> Any:
    """Phase one: a :class:`~studio.core.workflow.Workflow` with the graph and its layout."""
    from studio.core.workflow import Workflow

    workflow = Workflow(Graph(), source_format="comfyui-ui")
    definitions = _definitions(data)
    try:
        nodes, links, groups = _expand(data, definitions, "", (0.0, 0.0), 0, workflow.warnings, origin)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise WorkflowError(f"{origin}: not a readable ComfyUI workflow ({type(exc).__name__}: {exc})") from None
    _Builder(workflow, origin).build(nodes, links, groups)
    version = data.get("version")
    if version is not None:
        workflow.meta["comfyui"] = {"version": version}
    return workflow


# -- subgraphs ------------------------------------------------------------------------------------
def _definitions(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}

    def collect(container: Any) -> None:
        subgraphs = container.get("definitions", {}).get("subgraphs", []) if isinstance(container, dict) else []
        for item in subgraphs if isinstance(subgraphs, list) else []:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                found.setdefault(item["id"], item)
                collect(item)

    collect(data)
    return found


Link = tuple[str, str, int, str, int]  # id, origin, origin slot, target, target slot


def _link(item: Any) -> Link | None:
    if isinstance(item, list) and len(item) >= 5:
        link_id, origin, origin_slot, target, target_slot = item[:5]
    elif isinstance(item, dict):
        link_id, origin, origin_slot = item.get("id"), item.get("origin_id"), item.get("origin_slot")
        target, target_slot = item.get("target_id"), item.get("target_slot")
    else:
        return None
    if None in (link_id, origin, origin_slot, target, target_slot):
        return None
    return str(link_id), str(origin), int(origin_slot), str(target), int(target_slot)


def point(value: Any) -> tuple[float, float] | None:
    """A litegraph position or size: ``[x, y]``, or ``{"0": x, "1": y}`` in old files."""
    if isinstance(value, dict):
        value = [value.get("0"), value.get("1")]
    return layout.as_point(value)


def _expand(graph: dict[str, Any], definitions: dict[str, dict[str, Any]], prefix: str, offset: tuple[float, float],
            depth: int, warnings: list[str], origin: str) -> tuple[list[dict[str, Any]], list[Link], list[dict[str, Any]]]:
    """Nodes, links and groups of ``graph`` with subgraph instances replaced by their contents."""
    nodes_out: list[dict[str, Any]] = []
    links_out: list[Link] = []
    groups_out = [_moved_group(g, offset) for g in graph.get("groups") or [] if isinstance(g, dict)]
    # instance id → (input slot → [(target, target slot)], output slot → (origin, origin slot))
    instances: dict[str, tuple[dict[int, list[tuple[str, int]]], dict[int, tuple[str, int]]]] = {}
    shifts: list[tuple[float, float]] = []
    for node in graph.get("nodes") or []:
        if not isinstance(node, dict) or node.get("id") is None:
            warnings.append(f"{origin}: skipped a node without an id")
            continue
        node_id = str(node["id"])
        pos = point(node.get("pos")) or (0.0, 0.0)
        here = (pos[0] + offset[0], pos[1] + offset[1])
        definition = definitions.get(node.get("type")) if isinstance(node.get("type"), str) else None
        if definition is None:
            nodes_out.append(dict(node, id=prefix + node_id, pos=[here[0], here[1]]))
            continue
        if depth >= MAX_DEPTH:
            raise WorkflowError(f"{origin}: subgraphs are nested more than {MAX_DEPTH} deep (a subgraph inside itself?)")
        inner_prefix = f"{prefix}{node_id}:"
        inner_nodes = [n for n in definition.get("nodes") or [] if isinstance(n, dict)]
        corner = _top_left(inner_nodes)
        inner_offset = (here[0] - corner[0], here[1] - corner[1] + 40)
        nodes, links, groups = _expand(definition, definitions, inner_prefix, inner_offset, depth + 1, warnings, origin)
        _promote(node, definition, inner_prefix, nodes)
        mode = node.get("mode", 0)
        if mode in (2, 4):
            for inner in nodes:
                inner["mode"] = mode
        inputs: dict[int, list[tuple[str, int]]] = {}
        outputs: dict[int, tuple[str, int]] = {}
        for link in links:
            link_id, source, slot, target, target_slot = link
            from_boundary = source == inner_prefix + SUBGRAPH_INPUT
            to_boundary = target == inner_prefix + SUBGRAPH_OUTPUT
            if from_boundary and to_boundary:
                warnings.append(f"{origin}: subgraph {definition.get('name')!r}: an input wired straight to an "
                                "output was dropped")
            elif from_boundary:
                inputs.setdefault(slot, []).append((target, target_slot))
            elif to_boundary:
                outputs[target_slot] = (source, slot)
            else:
                links_out.append(link)
        instances[node_id] = (inputs, outputs)
        nodes_out += nodes
        groups_out += groups
        box = _bounds(nodes)
        if box is not None:
            x, y, w, h = box
            size = point(node.get("size")) or (200.0, 100.0)
            grow = w - size[0]
            if grow > 0:  # make room: what stood right of the instance moves right by the extra width
                shifts.append((here[0], grow))
            groups_out.append({"title": str(definition.get("name") or node.get("title") or "Subgraph"),
                               "bounding": [x - 20, y - 60, w + 40, h + 80], "color": "#3f5f7f", "_inner": True})
    inner_ids = {n["id"] for n in nodes_out if n["id"].count(":") > prefix.count(":")}
    for left, grow in shifts:
        for placed in nodes_out:
            pos = placed.get("pos")
            if placed["id"] not in inner_ids and isinstance(pos, list) and pos[0] > left:
                placed["pos"] = [pos[0] + grow, pos[1]]
        for group in groups_out:
            bounding = group.get("bounding")
            if isinstance(bounding, list) and len(bounding) == 4 and bounding[0] > left and group.get("_inner") is None:
                group["bounding"] = [bounding[0] + grow, *bounding[1:]]
    for item in graph.get("links") or []:
        link = _link(item)
        if link is None:
            continue
        link_id, source, slot, target, target_slot = link
        if source in instances:
            inner = instances[source][1].get(slot)
            if inner is None:
                continue
            source_full, slot = inner
        else:
            source_full = prefix + source
        if target in instances:
            for index, (inner_target, inner_slot) in enumerate(instances[target][0].get(target_slot, [])):
                links_out.append((f"{prefix}{link_id}#{index}", source_full, slot, inner_target, inner_slot))
            continue
        links_out.append((prefix + link_id, source_full, slot, prefix + target, target_slot))
    return nodes_out, links_out, groups_out


def _promote(instance: dict[str, Any], definition: dict[str, Any], inner_prefix: str, nodes: list[dict[str, Any]]) -> None:
    """Values of widgets promoted onto a subgraph's instance node go to the inner widgets they stand for."""
    proxies = (instance.get("properties") or {}).get("proxyWidgets")
    values = instance.get("widgets_values")
    if not isinstance(proxies, list) or not isinstance(values, list):
        return
    by_id = {n["id"]: n for n in nodes}
    for proxy, value in zip(proxies, values):
        if isinstance(proxy, list) and len(proxy) == 2:
            target = by_id.get(inner_prefix + str(proxy[0]))
            if target is not None:
                target.setdefault("_overrides", {})[str(proxy[1])] = value


def _top_left(nodes: list[dict[str, Any]]) -> tuple[float, float]:
    points = [p for p in (point(n.get("pos")) for n in nodes) if p is not None]
    if not points:
        return 0.0, 0.0
    return min(p[0] for p in points), min(p[1] for p in points)


def _bounds(nodes: list[dict[str, Any]]) -> tuple[float, float, float, float] | None:
    boxes = []
    for node in nodes:
        pos, size = point(node.get("pos")), point(node.get("size")) or (200.0, 100.0)
        if pos is not None:
            boxes.append((pos[0], pos[1], pos[0] + size[0], pos[1] + size[1]))
    if not boxes:
        return None
    left, top = min(b[0] for b in boxes), min(b[1] for b in boxes)
    return left, top, max(b[2] for b in boxes) - left, max(b[3] for b in boxes) - top


def _moved_group(group: dict[str, Any], offset: tuple[float, float]) -> dict[str, Any]:
    bounding = group.get("bounding")
    if isinstance(bounding, list) and len(bounding) == 4 and offset != (0.0, 0.0):
        group = dict(group, bounding=[bounding[0] + offset[0], bounding[1] + offset[1], bounding[2], bounding[3]])
    return group


# -- building the graph ---------------------------------------------------------------------------
class _Builder:
    def __init__(self, workflow: Any, origin: str):
        self.workflow = workflow
        self.origin = origin
        self.graph: Graph = workflow.graph
        self.ui: dict[str, Any] = workflow.ui
        self.nodes: dict[str, dict[str, Any]] = {}
        self.reroutes: dict[str, dict[str, Any]] = {}
        self.link_origin: dict[str, tuple[str, int]] = {}

    def warn(self, text: str) -> None:
        self.workflow.warnings.append(f"{self.origin}: {text}")

    def build(self, nodes: list[dict[str, Any]], links: list[Link], groups: list[dict[str, Any]]) -> None:
        for node in nodes:
            self.nodes[node["id"]] = node
        for link_id, source, slot, _target, _slot in links:
            self.link_origin[link_id] = (source, slot)
        for node in nodes:
            self._add_node(node)
        bends: dict[str, list[list[float]]] = {}
        for link_id, source, slot, target, target_slot in links:
            if target in self.reroutes or target not in self.graph.nodes:
                continue  # links into a reroute are followed from its far side
            origin = self._through_reroutes(source, slot)
            if origin is None:
                self.warn(f"dropped link {link_id}: it starts at a reroute that nothing feeds")
                continue
            source, slot, points = origin
            if source not in self.graph.nodes:
                self.warn(f"dropped link {link_id}: node {source} is not in the workflow")
                continue
            name = self._input_name(target, target_slot)
            if name is None:
                self.warn(f"dropped link {link_id}: node {target} has no input slot {target_slot}")
                continue
            if self.graph.link_into(target, name) is not None:
                self.warn(f"input '{name}' of node {target} had two links; kept the last one")
                self.graph.remove_link(self.graph.link_into(target, name).id)
            self.graph.connect(source, slot, target, name, id=link_id)
            if points:
                bends[link_id] = points
        if bends:
            self.ui[layout.REROUTES] = bends
        self._add_groups(groups)

    def _through_reroutes(self, source: str, slot: int) -> tuple[str, int, list[list[float]]] | None:
        """The real origin of a wire that may start at a chain of Reroute nodes, and the reroutes'
        centres as bend points (from the origin on); None when a reroute in the chain has no input."""
        points: list[list[float]] = []
        seen: set[str] = set()
        while source in self.reroutes and source not in seen:
            seen.add(source)
            reroute = self.reroutes[source]
            points.insert(0, reroute["centre"])
            upstream = reroute["input_link"]
            if upstream is None or upstream not in self.link_origin:
                return None
            source, slot = self.link_origin[upstream]
        return source, slot, points

    def _input_name(self, node_id: str, slot: int) -> str | None:
        node = self.nodes.get(node_id)
        if node is None:
            return None
        if node.get("type") == PRIMITIVE:
            return None
        inputs = node.get("inputs") or []
        if not (0 <= slot < len(inputs)) or not isinstance(inputs[slot], dict):
            return None
        entry = inputs[slot]
        widget = entry.get("widget")
        if isinstance(widget, dict) and isinstance(widget.get("name"), str):
            return widget["name"]
        name = entry.get("name")
        return name if isinstance(name, str) and name else None

    def _add_node(self, node: dict[str, Any]) -> None:
        node_id = node["id"]
        node_type = node.get("type")
        if not isinstance(node_type, str) or not node_type:
            self.warn(f"skipped node {node_id}: it has no type")
            return
        pos = point(node.get("pos"))
        size = point(node.get("size"))
        if node_type == REROUTE:
            inputs = node.get("inputs") or [{}]
            first = inputs[0] if inputs and isinstance(inputs[0], dict) else {}
            centre = [pos[0] + (size[0] if size else 75.0) / 2, pos[1] + (size[1] if size else 26.0) / 2] if pos else [0, 0]
            link = first.get("link")
            self.reroutes[node_id] = {"input_link": None if link is None else str(link), "centre": centre}
            return
        if node_type in NOTES:
            values = node.get("widgets_values") or [""]
            text = values[0] if isinstance(values, list) and values and isinstance(values[0], str) else ""
            self.ui.setdefault(layout.NOTES, []).append({"id": f"comfy-{node_id}", "text": text, **_placement(node)})
            return
        mode = _MODES.get(node.get("mode", 0))
        if mode is None:
            self.warn(f"node {node_id} ({node_type}): mode {node.get('mode')!r} is run as normal")
            mode = NodeMode.NORMAL
        title = node.get("title") if isinstance(node.get("title"), str) else None
        if node_type == PRIMITIVE:
            self._add_primitive(node, mode, title)
        else:
            if node_type.startswith(("workflow>", "workflow/")):
                self.warn(f"node {node_id}: {node_type!r} is an old-style ComfyUI group node, which is not "
                          "supported; it is kept as a placeholder (convert it to a subgraph in ComfyUI)")
            comfy = {key: node[key] for key in ("widgets_values", "inputs", "outputs", "properties") if key in node}
            if "_overrides" in node:
                comfy["overrides"] = node["_overrides"]
            if title is not None and title == node_type:
                title = None
            self.graph.add_node(node_type, {}, id=node_id, mode=mode, title=title, extra={"comfy": comfy})
        entry = _placement(node)
        if isinstance(node.get("flags"), dict) and node["flags"].get("collapsed"):
            entry["collapsed"] = True
        if entry:
            self.ui.setdefault(layout.NODES, {})[node_id] = entry

    def _add_primitive(self, node: dict[str, Any], mode: NodeMode, title: str | None) -> None:
        outputs = node.get("outputs") or []
        first = outputs[0] if outputs and isinstance(outputs[0], dict) else {}
        kind = str(first.get("type") or "")
        values = node.get("widgets_values")
        value = values[0] if isinstance(values, list) and values else None
        if kind not in _PRIMITIVES and isinstance(value, bool):
            kind = "BOOLEAN"
        elif kind not in _PRIMITIVES and isinstance(value, int):
            kind = "INT"
        elif kind not in _PRIMITIVES and isinstance(value, float):
            kind = "FLOAT"
        elif kind not in _PRIMITIVES:
            kind = "STRING"  # a combo's value, or one the file does not type
        node_type = _PRIMITIVES[kind]
        inputs = {} if value is None else {"value": str(value) if node_type == "PrimitiveString" else value}
        self.graph.add_node(node_type, inputs, id=node["id"], mode=mode, title=title)

    def _add_groups(self, groups: list[dict[str, Any]]) -> None:
        listed = []
        for index, group in enumerate(groups, 1):
            bounding = group.get("bounding")
            if not (isinstance(bounding, list) and len(bounding) == 4
                    and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bounding)):
                self.warn(f"skipped group {group.get('title')!r}: its bounding box is not [x, y, w, h]")
                continue
            item: dict[str, Any] = {"id": f"comfy-{index}", "title": str(group.get("title") or "Group"),
                                    "bounding": [float(v) for v in bounding]}
            if isinstance(group.get("color"), str):
                item["color"] = _hex(group["color"])
            listed.append(item)
        if listed:
            self.ui.setdefault(layout.GROUPS, []).extend(listed)


def _placement(node: dict[str, Any]) -> dict[str, Any]:
    """Position, size and colour of a node (or note) in our layout's terms; what is missing is left out."""
    entry: dict[str, Any] = {}
    pos, size, colour = point(node.get("pos")), point(node.get("size")), _colour(node)
    if pos:
        entry["pos"] = [pos[0], pos[1]]
    if size:
        entry["size"] = [size[0], size[1]]
    if colour:
        entry["color"] = colour
    return entry


def _colour(node: dict[str, Any]) -> str | None:
    for key in ("bgcolor", "color"):
        value = node.get(key)
        if isinstance(value, str) and value.startswith("#"):
            return _hex(value)
    return None


def _hex(value: str) -> str:
    """``#abc`` → ``#aabbcc`` (litegraph writes short colours)."""
    if len(value) == 4 and value.startswith("#"):
        return "#" + "".join(c * 2 for c in value[1:])
    return value


# -- phase two: widget values -----------------------------------------------------------------------
def widget_sequence(spec: Any) -> tuple[str, ...]:
    """The inputs ComfyUI's ``widgets_values`` of this node type holds, in order."""
    special = SPECIAL_SEQUENCES.get(spec.type)
    if special is not None:
        return special
    names: list[str] = []
    for inp in spec.inputs:
        if not _is_widget(inp):
            continue
        names.append(inp.name)
        if inp.name in layout.SEED_INPUTS and inp.type == "INT":
            names.append(CONTROL)
    return tuple(names)


def _is_widget(inp: Any) -> bool:
    from studio.core.types import WIDGET_TYPES, type_members

    if inp.choices is not None:
        return True
    members = type_members(inp.type)
    return members is not None and bool(members & WIDGET_TYPES) and len(members) == 1


def foreign_type(node: GraphNode, spec: Any) -> str | None:
    """The type to keep a ComfyUI custom node under when it shares its name with one of our own
    nodes that is not a ComfyUI core node (``InpaintCrop`` from a custom pack is not ours): its
    pack's id becomes its namespace, so it stays a placeholder instead of taking our node's inputs."""
    from studio.core.comfy_export import COMFY_CORE_TYPES

    comfy = node.extra.get("comfy")
    properties = comfy.get("properties") if isinstance(comfy, dict) else None
    pack = properties.get("cnr_id") or properties.get("aux_id") if isinstance(properties, dict) else None
    if spec.pack is not None or spec.type in COMFY_CORE_TYPES or not isinstance(pack, str) or pack == "comfy-core":
        return None
    name = "".join(c if c.isalnum() or c in "_-" else "_" for c in pack.rsplit("/", 1)[-1]) or "custom"
    return f"{name}.{node.type}"


def apply_widget_values(workflow: Any, node: GraphNode, spec: Any) -> None:
    """Map a ComfyUI node's saved widget values onto its inputs (a link into an input wins)."""
    comfy = node.extra.pop("comfy", None)
    if not isinstance(comfy, dict):
        return
    values = comfy.get("widgets_values")
    where = f"node {node.id} ({node.type})"
    names = widget_sequence(spec)
    if isinstance(values, dict):  # some nodes save {name: value}
        pairs = [(str(k), v) for k, v in values.items()]
    elif isinstance(values, list):
        pairs = list(zip(names, values))
        extra = values[len(names):]
        if any(v is not None for v in extra):
            workflow.warnings.append(f"{where}: ignored {len(extra)} widget value(s) this node does not have "
                                     "(saved by a newer ComfyUI?)")
    else:
        pairs = []
    graph = workflow.graph
    previous: str | None = None
    for name, value in pairs:
        if name == CONTROL:
            if previous is not None and value is not None:
                _set_control(workflow, node, previous, value, where)
            continue
        previous = name
        if name == SKIP:
            continue
        inp = spec.input_map.get(spec.renamed_input(name))
        if inp is None:
            continue
        if graph.link_into(node.id, inp.name) is not None:
            continue  # the link feeds it; the saved value was only what the widget showed
        node.inputs[inp.name] = _checked(workflow, inp, value, where)
    for name, value in (comfy.get("overrides") or {}).items():
        inp = spec.input_map.get(spec.renamed_input(name))
        if inp is not None and graph.link_into(node.id, inp.name) is None:
            node.inputs[inp.name] = _checked(workflow, inp, value, where)


def _set_control(workflow: Any, node: GraphNode, name: str, value: Any, where: str) -> None:
    control = _CONTROL_VALUES.get(value) if isinstance(value, (str, bool)) else None
    if control is None:
        workflow.warnings.append(f"{where}: unknown 'control after generate' value {value!r}; using 'fixed'")
        control = "fixed"
    elif value == "decrement" or value == "increment-wrap":
        workflow.warnings.append(f"{where}: '{value}' after generate is not offered here; using '{control}'")
    if node.type == "PrimitiveInt" or name not in layout.SEED_INPUTS:
        return  # only seed widgets have the control here
    entry = workflow.ui.setdefault(layout.NODES, {}).setdefault(node.id, {})
    entry.setdefault("controls", {})[name] = control


def _checked(workflow: Any, inp: Any, value: Any, where: str) -> Any:
    """``value`` fitted to ``inp``: Windows paths and ComfyUI's image annotations undone, then
    checked; a value that does not fit is kept as it is (so nothing is lost) with a warning."""
    if isinstance(value, str) and (inp.choices is not None or inp.name == "filename_prefix") and "\\" in value:
        value = value.replace("\\", "/")  # a model path, or a sub-folder of the output folder, saved on Windows
    if isinstance(value, str) and (inp.choices is not None or inp.name == "image"):
        for suffix in _IMAGE_SUFFIXES:  # ComfyUI's "photo.png [input]" names a picture in its input folder
            if value.endswith(suffix):
                value = value[: -len(suffix)]
    if isinstance(value, float) and not math.isfinite(value):
        workflow.warnings.append(f"{where}: input '{inp.name}' was saved as {value}; left at its default")
        return inp.default
    try:
        return inp.coerce(value)
    except InputValueError as exc:
        workflow.warnings.append(f"{where}: input '{inp.name}': {exc}")
        return value
