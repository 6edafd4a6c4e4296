"""What a saved picture carries so other tools can read it back.

Three PNG text chunks: ``nuance`` (our workflow, to restore the whole graph), ``prompt`` (ComfyUI's
API format, when the graph allows one) and ``parameters`` (AUTOMATIC1111's text, read by model
sites and image browsers). The A1111 text is gathered by walking up from the saving node to its
sampler; values that are not plain constants are left out rather than guessed.
"""

from __future__ import annotations

import json
from typing import Any

from studio.core.graph import Graph

A1111_SAMPLER_NAMES = {
    "euler": "Euler", "euler_ancestral": "Euler a", "heun": "Heun", "dpm_2": "DPM2", "lms": "LMS",
    "dpmpp_2m": "DPM++ 2M", "dpmpp_2m_sde": "DPM++ 2M SDE", "dpmpp_sde": "DPM++ SDE", "ddim": "DDIM",
    "uni_pc": "UniPC", "lcm": "LCM",
    # added with ComfyUI's newer samplers; spellings as A1111 / Forge write them. The *_gpu names
    # run the same algorithm as their plain one, so they share its name.
    "dpm_2_ancestral": "DPM2 a", "dpmpp_2s_ancestral": "DPM++ 2S a", "dpmpp_sde_gpu": "DPM++ SDE",
    "dpmpp_2m_sde_gpu": "DPM++ 2M SDE", "dpmpp_2m_sde_heun": "DPM++ 2M SDE Heun", "dpmpp_2m_sde_heun_gpu": "DPM++ 2M SDE Heun",
    "dpmpp_3m_sde": "DPM++ 3M SDE", "dpmpp_3m_sde_gpu": "DPM++ 3M SDE", "ddpm": "DDPM", "heunpp2": "HeunPP2",
    "ipndm": "IPNDM", "ipndm_v": "IPNDM_V", "deis": "DEIS", "euler_cfg_pp": "Euler CFG++",
    "euler_ancestral_cfg_pp": "Euler a CFG++", "dpmpp_2m_cfg_pp": "DPM++ 2M CFG++",
}
A1111_SCHEDULER_SUFFIX = {"karras": " Karras", "exponential": " Exponential", "sgm_uniform": " SGM Uniform"}
SAMPLER_TYPES = ("KSampler", "KSamplerAdvanced")


def png_text_chunks(graph: Graph | None, node_id: str, workflow: Any = None) -> dict[str, str]:
    if graph is None:
        return {}
    from studio.core.workflow import Workflow, to_comfy_api, workflow_to_dict

    ui = getattr(workflow, "ui", {}) or {}
    meta = getattr(workflow, "meta", {}) or {}
    chunks = {"nuance": json.dumps(workflow_to_dict(Workflow(graph, ui=ui, meta=meta)), ensure_ascii=False)}
    upstream = graph.upstream([node_id])
    needed = [n for n in graph.nodes if n in upstream]
    prompt = to_comfy_api(graph, needed)
    if prompt is not None:
        chunks["prompt"] = json.dumps(prompt, ensure_ascii=False)
    parameters = a1111_parameters(graph, node_id)
    if parameters:
        chunks["parameters"] = parameters
    return chunks


def _source(graph: Graph, node_id: str, input_name: str) -> str | None:
    link = graph.link_into(node_id, input_name)
    return None if link is None else link.from_node


def _value(graph: Graph, node_id: str, input_name: str) -> Any:
    """A constant input, or the constant of a primitive wired into it; None otherwise."""
    source = _source(graph, node_id, input_name)
    if source is None:
        return graph.nodes[node_id].inputs.get(input_name)
    node = graph.nodes[source]
    if node.type.startswith("Primitive") or node.type == "Seed":
        return node.inputs.get("value", node.inputs.get("seed"))
    return None


#: Input names that carry the same kind of value onward, for following a value up the graph
#: through nodes that transform it (a LoRA on the model, a ControlNet on the conditioning,
#: an upscale or a first sampler on the latent).
_SAME_KIND = {
    "positive": ("positive", "conditioning", "conditioning_to"),
    "negative": ("negative", "conditioning", "conditioning_to"),
    "latent_image": ("latent_image", "samples", "latent"),
    "model": ("model",),
}


def _find_up(graph: Graph, node_id: str, input_name: str, types: tuple[str, ...], depth: int = 16) -> str | None:
    """Follow ``input_name`` upward, through inputs of the same kind, to a node of ``types``."""
    names = _SAME_KIND.get(input_name, (input_name,))
    current = _source(graph, node_id, input_name)
    for _ in range(depth):
        if current is None:
            return None
        if graph.nodes[current].type in types:
            return current
        wired = {link.to_input: link.from_node for link in graph.links_into(current)}
        current = next((wired[name] for name in (input_name, *names) if name in wired), None)
    return None


def _nearest_upstream(graph: Graph, node_id: str, types: tuple[str, ...]) -> str | None:
    """Breadth-first up the graph: with a second (hires) pass, the last sampler is the nearest."""
    queue, seen = [node_id], {node_id}
    while queue:
        current = queue.pop(0)
        if current != node_id and graph.nodes[current].type in types:
            return current
        for link in graph.links_into(current):
            if link.from_node not in seen:
                seen.add(link.from_node)
                queue.append(link.from_node)
    return None


def a1111_parameters(graph: Graph, node_id: str) -> str | None:
    sampler_id = _nearest_upstream(graph, node_id, SAMPLER_TYPES)
    if sampler_id is None:
        return None
    sampler = graph.nodes[sampler_id]
    advanced = sampler.type == "KSamplerAdvanced"
    lines = []
    for which in ("positive", "negative"):
        encoder = _find_up(graph, sampler_id, which, ("CLIPTextEncode",))
        text = _value(graph, encoder, "text") if encoder else None
        if which == "positive":
            lines.append(text if isinstance(text, str) else "")
        elif isinstance(text, str) and text:
            lines.append(f"Negative prompt: {text}")
    fields: list[str] = []

    def add(label: str, value: Any) -> None:
        if value is not None:
            fields.append(f"{label}: {value}")

    add("Steps", _value(graph, sampler_id, "steps"))
    name = _value(graph, sampler_id, "sampler_name")
    scheduler = _value(graph, sampler_id, "scheduler")
    if isinstance(name, str):
        add("Sampler", A1111_SAMPLER_NAMES.get(name, name) + A1111_SCHEDULER_SUFFIX.get(str(scheduler), ""))
    if isinstance(scheduler, str):
        add("Schedule type", scheduler)
    add("CFG scale", _value(graph, sampler_id, "cfg"))
    add("Seed", _value(graph, sampler_id, "noise_seed" if advanced else "seed"))
    latent = _find_up(graph, sampler_id, "latent_image", ("EmptyLatentImage",))
    if latent is not None:
        width, height = _value(graph, latent, "width"), _value(graph, latent, "height")
        if width and height:
            add("Size", f"{width}x{height}")
    loader = _find_up(graph, sampler_id, "model", ("CheckpointLoaderSimple",))
    if loader is not None:
        ckpt = _value(graph, loader, "ckpt_name")
        if isinstance(ckpt, str):
            digest = _cached_model_hash(ckpt)
            if digest:
                add("Model hash", digest)
            add("Model", ckpt.rsplit("/", 1)[-1].rsplit(".", 1)[0])
    denoise = _value(graph, sampler_id, "denoise")
    if not advanced and isinstance(denoise, (int, float)) and denoise < 1:
        add("Denoising strength", denoise)
    fields.append("Version: Nuance Studio")
    return "\n".join([*lines, ", ".join(fields)])


def _cached_model_hash(name: str) -> str | None:
    """The model's short hash if already known (hashing gigabytes while saving would stall)."""
    try:
        from studio.models.files import cached_sha256
        from studio.models.folders import model_folders

        digest = cached_sha256(model_folders().find("checkpoints", name))
    except Exception:
        return None
    return None if digest is None else digest[:10]
