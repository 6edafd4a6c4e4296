"""Export a graph as a ComfyUI API-format prompt (what ComfyUI's "Export (API)" writes and its
``/prompt`` endpoint takes), for graphs made only of nodes that ComfyUI's core has too.

ComfyUI's prompt has no node modes, so the graph is first reduced to what our engine would run:

- a **bypassed** node is removed and each consumer of one of its outputs is fed what the engine
  passes through: the node's first input (in declaration order) whose type matches that output,
  wire or typed-in value alike, as ComfyUI's frontend does when it builds a prompt;
- a **muted** node is left out, and with it every node that needs it (a required input wired to
  it, directly or through other left-out or bypassed nodes): our engine skips those too, so what
  remains runs exactly as it does here. An optional input wired to a left-out node is dropped, as
  the engine treats it as unwired. Each left-out node is reported in ``notes``.

What then remains must be ComfyUI core types (:data:`COMFY_CORE_TYPES`, same name and meaning);
anything else (our own nodes, plugin nodes, placeholders of uninstalled types) is refused with
an :class:`ExportError` naming every such node. Our inputs ComfyUI's node lacks are dropped: a
LoadImage's painted ``mask`` is first baked into an RGBA copy of its picture, alpha = 1 − mask,
which ComfyUI's LoadImage turns back into the same MASK.

Pure Python at import time: Pillow and numpy are imported only when a mask is baked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.core.errors import NuanceError
from studio.core.graph import Graph, GraphNode, NodeMode
from studio.core.registry import NodeRegistry
from studio.core.workflow import Workflow, to_comfy_api

#: Our built-in node types that exist in ComfyUI's core with the same name, inputs and meaning.
#: Deliberately explicit: a node is added here only once checked against ComfyUI's own.
COMFY_CORE_TYPES = frozenset({
    # loaders
    "CheckpointLoaderSimple", "VAELoader", "LoraLoader", "LoraLoaderModelOnly", "ControlNetLoader",
    "UpscaleModelLoader",
    # conditioning and sampling
    "CLIPTextEncode", "CLIPSetLastLayer", "ModelSamplingDiscrete", "ControlNetApply", "ControlNetApplyAdvanced",
    "InpaintModelConditioning", "KSampler", "KSamplerAdvanced",
    # latents
    "EmptyLatentImage", "LatentUpscale", "LatentUpscaleBy", "VAEDecode", "VAEEncode", "VAEDecodeTiled",
    "VAEEncodeTiled", "VAEEncodeForInpaint", "SetLatentNoiseMask",
    # images
    "LoadImage", "SaveImage", "PreviewImage", "ImageScale", "ImageScaleBy", "ImageScaleToTotalPixels",
    "ImageUpscaleWithModel", "ImageCrop", "ImageInvert", "ImagePadForOutpaint", "ImageCompositeMasked",
    "ImageBlend", "ImageBlur", "ImageQuantize", "Canny",
    # masks
    "InvertMask", "GrowMask", "FeatherMask", "ThresholdMask", "MaskComposite", "MaskToImage", "ImageToMask",
    "ImageColorToMask",
    # added for ComfyUI coverage: loaders, conditioning, latent, image and mask tools
    "CheckpointLoader", "DiffControlNetLoader", "CLIPTextEncodeSDXL", "CLIPTextEncodeSDXLRefiner",
    "ConditioningCombine", "ConditioningConcat", "ConditioningAverage", "ConditioningZeroOut",
    "ConditioningSetTimestepRange", "ConditioningSetArea", "ConditioningSetAreaPercentage",
    "ConditioningSetAreaStrength", "ConditioningSetMask", "LatentComposite", "LatentCompositeMasked",
    "RepeatLatentBatch", "LatentFromBatch", "LatentFlip", "LatentRotate", "LatentCrop", "LatentBlend",
    "LoadImageMask", "EmptyImage", "ImageBatch", "ImageSharpen", "SolidMask", "CropMask",
    # utilities (comfy_extras: nodes_primitive, nodes_string, nodes_preview_any)
    "PrimitiveInt", "PrimitiveFloat", "PrimitiveString", "PrimitiveStringMultiline", "PrimitiveBoolean",
    "StringConcatenate", "StringReplace", "PreviewAny",
})

#: Inputs of ours that ComfyUI's node of the same name lacks; left out of the prompt (after baking).
OUR_EXTRA_INPUTS: dict[str, tuple[str, ...]] = {"LoadImage": ("mask",)}

#: Required inputs ComfyUI's node has and ours lacks, with the value that behaves as our node does
#: (ComfyUI refuses a prompt that leaves a required input out).
COMFY_ADDED_INPUTS: dict[str, dict[str, Any]] = {
    "VAEDecodeTiled": {"temporal_size": 64, "temporal_overlap": 8},
    "VAEEncodeTiled": {"temporal_size": 64, "temporal_overlap": 8},
    "ImageScaleToTotalPixels": {"resolution_steps": 1},
}

COPY_HINT = "copy it into ComfyUI's input folder"


class ExportError(NuanceError):
    """The graph cannot be written as a ComfyUI prompt; the message names the nodes and why."""


@dataclass
class ComfyExport:
    """A prompt plus what the export did around it: pictures written, and notes for the user."""

    prompt: dict[str, Any]
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Wire:
    node_id: str
    slot: int


@dataclass(frozen=True)
class _Const:
    value: Any


_Source = _Wire | _Const | None  # None: no value (left out, or a bypass with nothing to pass)


def export_comfy_api(workflow: Workflow, registry: NodeRegistry, *, files_dir: Path | None) -> dict[str, Any]:
    """The workflow as a ComfyUI API-format prompt; baked pictures are written into ``files_dir``."""
    return build_comfy_export(workflow, registry, files_dir=files_dir).prompt


def build_comfy_export(workflow: Workflow, registry: NodeRegistry, *, files_dir: Path | None) -> ComfyExport:
    """Like :func:`export_comfy_api`, also saying which files were written and what was left out.

    Raises :class:`ExportError` for a graph that cannot be expressed; nothing is written then.
    """
    graph = workflow.graph
    unknown = [node for node in graph.nodes.values() if registry.spec(node.type) is None]
    if unknown:
        what, it = (" is a node type", "it") if len(unknown) == 1 else (" are node types", "them")
        raise ExportError(f"{_nodes_text(unknown)}{what} not installed here, so the graph cannot be exported; "
                          f"install the plugin that provides {it}, or remove {it}")
    plain, notes = _without_modes(graph, registry)
    foreign = [node for node in plain.nodes.values() if registry.spec(node.type).type not in COMFY_CORE_TYPES]
    if foreign:
        what, it = (" is not a ComfyUI core node", "it") if len(foreign) == 1 else (" are not ComfyUI core nodes", "them")
        raise ExportError(f"{_nodes_text(foreign)}{what}; ComfyUI would not know {it}: replace {it}, or bypass or "
                          f"mute {it} to leave {it} out")
    if not any(registry.spec(node.type).output_node for node in plain.nodes.values()):
        raise ExportError("nothing to export: no output node (such as SaveImage or PreviewImage) would run"
                          + (f" ({'; '.join(notes)})" if notes else ""))
    prompt = to_comfy_api(plain)
    assert prompt is not None  # every mode is normal in ``plain``
    bakes = _planned_bakes(prompt, workflow.base_dir, files_dir)
    result = ComfyExport(prompt, notes=notes)
    for item in prompt.values():
        node_type = item["class_type"]
        for name in OUR_EXTRA_INPUTS.get(node_type, ()):
            item["inputs"].pop(name, None)
        for name, value in COMFY_ADDED_INPUTS.get(node_type, {}).items():
            item["inputs"].setdefault(name, value)
    pictures = [bake.render() for bake in bakes]  # every picture read and checked before any is written
    for bake, picture in zip(bakes, pictures):
        written = bake.write(picture)
        if written not in result.files:
            result.files.append(written)
        prompt[bake.node_id]["inputs"]["image"] = written.name
        result.notes.append(f"node {bake.node_id} (LoadImage): baked its painted mask into {written}; {COPY_HINT}")
    baked = {bake.node_id for bake in bakes}
    for node_id, item in prompt.items():
        image = item["inputs"].get("image")
        if item["class_type"] == "LoadImage" and node_id not in baked and isinstance(image, str) and image:
            result.notes.append(f"node {node_id} (LoadImage) reads {image!r}: {COPY_HINT}")
    return result


def _nodes_text(nodes: list[GraphNode]) -> str:
    return ", ".join(node.label() for node in nodes)


# -- modes -------------------------------------------------------------------------------------
def _topological(graph: Graph) -> list[str]:
    feeding: dict[str, set[str]] = {node_id: set() for node_id in graph.nodes}
    for link in graph.links.values():
        feeding[link.to_node].add(link.from_node)
    order: list[str] = []
    done: set[str] = set()
    pending = list(graph.nodes)
    while pending:
        ready = [node_id for node_id in pending if feeding[node_id] <= done]
        if not ready:
            raise ExportError(f"the graph has a cycle through {', '.join(graph.nodes[n].label() for n in pending)}")
        order.extend(ready)
        done.update(ready)
        pending = [node_id for node_id in pending if node_id not in done]
    return order


def _without_modes(graph: Graph, registry: NodeRegistry) -> tuple[Graph, list[str]]:
    """The graph as our engine would run it, with only normal nodes: bypasses resolved, muted
    nodes and what needs them left out. Returns it and a note per left-out node."""
    kept: dict[str, tuple[dict[str, Any], dict[str, _Wire]]] = {}  # id -> (constants, wires by input)
    passed: dict[str, list[_Source]] = {}  # bypassed id -> what each output slot passes
    why_gone: dict[str, str] = {}  # left-out id -> how a dependant explains its absence
    notes: list[str] = []

    def source(link_from: str, slot: int) -> _Source:
        if link_from in kept:
            return _Wire(link_from, slot)
        if link_from in passed:
            slots = passed[link_from]
            return slots[slot] if slot < len(slots) else None
        return None

    def gone_reason(link_from: str) -> str:
        node = graph.nodes[link_from]
        if link_from in why_gone:
            return f"{node.label()}, which {why_gone[link_from]}"
        return f"{node.label()}, which is bypassed and has nothing to pass on"

    for node_id in _topological(graph):
        node = graph.nodes[node_id]
        spec = registry.spec(node.type)
        assert spec is not None
        if node.mode is NodeMode.MUTED:
            why_gone[node_id] = "is muted"
            notes.append(f"{node.label()} is muted: left out")
            continue
        values: dict[str, _Source] = {}
        missing_required: str | None = None
        wired = {link.to_input: link for link in graph.links_into(node_id)}
        for inp in spec.inputs:
            link = wired.get(inp.name)
            if link is None:
                if inp.name in node.inputs:
                    values[inp.name] = _Const(node.inputs[inp.name])
                elif inp.has_default and inp.accepts_constant:
                    values[inp.name] = _Const(inp.default)
                continue
            found = source(link.from_node, link.from_output)
            if found is None:
                if inp.required and node.mode is NodeMode.NORMAL and missing_required is None:
                    missing_required = gone_reason(link.from_node)
                continue
            values[inp.name] = found
        if node.mode is NodeMode.BYPASSED:
            passed[node_id] = [_first_match(spec, values, out.type) for out in spec.outputs]
            notes.append(f"{node.label()} is bypassed: left out, its inputs passed through")
            continue
        if missing_required is not None:
            why_gone[node_id] = f"is left out as it needs {missing_required}"
            notes.append(f"{node.label()} is left out: it needs {missing_required}")
            continue
        constants = {name: value.value for name, value in values.items() if isinstance(value, _Const)}
        wires = {name: value for name, value in values.items() if isinstance(value, _Wire)}
        kept[node_id] = (constants, wires)

    plain = Graph()
    for node in graph.nodes.values():  # the graph's own order, not the run order
        if node.id in kept:
            plain.add_node(node.type, kept[node.id][0], id=node.id, title=node.title, version=node.version)
    for node_id, (_, wires) in kept.items():
        for name, wire in wires.items():
            plain.connect(wire.node_id, wire.slot, node_id, name)
    return plain, notes


def _first_match(spec: Any, values: dict[str, _Source], out_type: str) -> _Source:
    """What a bypassed node passes for an output of ``out_type``: the engine's rule (``bypass_input``)."""
    name = spec.bypass_input(out_type, {k for k, v in values.items() if v is not None})
    return None if name is None else values[name]


# -- painted masks -----------------------------------------------------------------------------
@dataclass
class _Bake:
    node_id: str
    picture: Path
    mask: Path
    target: Path

    def render(self) -> Any:
        """The picture as RGBA with alpha = 255 − mask (1 − mask, as ComfyUI reads it back)."""
        import numpy as np
        from PIL import Image, ImageOps

        try:
            with Image.open(self.picture) as opened:
                frame = ImageOps.exif_transpose(opened)  # as our LoadImage; the copy carries no EXIF
                rgb = _as_rgb8(frame, np)
        except OSError as exc:
            raise ExportError(f"node {self.node_id} (LoadImage): {self.picture.name} could not be read as an "
                              f"image: {exc}") from None
        try:
            with Image.open(self.mask) as opened:
                grey = np.asarray(opened.convert("L"), dtype=np.uint8)
        except OSError as exc:
            raise ExportError(f"node {self.node_id} (LoadImage): mask {self.mask.name} could not be read as an "
                              f"image: {exc}") from None
        if grey.shape != rgb.shape[:2]:
            raise ExportError(
                f"node {self.node_id} (LoadImage): mask {self.mask.name} is {grey.shape[1]}×{grey.shape[0]} but image "
                f"{self.picture.name} is {rgb.shape[1]}×{rgb.shape[0]}: paint the mask again or resize it to match")
        return Image.fromarray(np.concatenate([rgb, (255 - grey)[..., None]], axis=-1), "RGBA")

    def write(self, picture: Any) -> Path:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        picture.save(self.target, format="PNG")
        return self.target


def _as_rgb8(frame: Any, np: Any) -> Any:
    """``[H, W, 3]`` uint8, scaling 16- and 32-bit greyscale as our LoadImage does."""
    if frame.mode.startswith("I"):
        grey = np.asarray(frame, dtype=np.float32)
        grey = grey / (65535.0 if frame.mode.startswith("I;16") or grey.max() > 255 else 255.0)
        return np.repeat((grey.clip(0, 1) * 255.0).round().astype(np.uint8)[..., None], 3, axis=-1)
    return np.asarray(frame.convert("RGB"), dtype=np.uint8)


def _planned_bakes(prompt: dict[str, Any], base_dir: Path | None, files_dir: Path | None) -> list[_Bake]:
    """Check every painted mask can be baked before anything is written; one file per picture and mask."""
    from studio.core.paths import find_input_file, input_file_candidates

    def find(name: str, what: str, node_id: str) -> Path:
        path = find_input_file(name, base_dir)
        if path is None:
            looked = ", ".join(str(p.parent) for p in input_file_candidates(name, base_dir))
            raise ExportError(f"node {node_id} (LoadImage): {what} {name!r} was not found (looked in: {looked})")
        return path

    bakes: list[_Bake] = []
    targets: dict[Path, tuple[Path, Path]] = {}
    for node_id, item in prompt.items():
        if item["class_type"] != "LoadImage":
            continue
        inputs = item["inputs"]
        mask, image = inputs.get("mask"), inputs.get("image")
        if isinstance(mask, list):
            raise ExportError(f"node {node_id} (LoadImage): its mask comes from node {mask[0]}, and ComfyUI's "
                              "LoadImage has no mask input; name the mask file on the node instead")
        if not isinstance(mask, str) or not mask.strip():
            continue
        if not isinstance(image, str) or not image.strip():
            raise ExportError(f"node {node_id} (LoadImage): a painted mask needs the picture's file name on the node")
        if files_dir is None:
            raise ExportError(f"node {node_id} (LoadImage): its painted mask must be baked into a copy of the "
                              "picture, but no folder was given to write it to")
        picture, mask_path = find(image, "image", node_id), find(mask, "mask", node_id)
        target = Path(files_dir) / f"{Path(image).stem}_masked.png"
        if target in targets and targets[target] != (picture.resolve(), mask_path.resolve()):
            target = target.with_name(f"{Path(image).stem}_masked_{node_id}.png")
        targets[target] = (picture.resolve(), mask_path.resolve())
        bakes.append(_Bake(node_id, picture, mask_path, target))
    return bakes
