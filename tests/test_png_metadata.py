"""What a saved picture tells other tools: our workflow ("nuance"), ComfyUI's API prompt ("prompt")
and AUTOMATIC1111's parameters text ("parameters").

The sampler graphs are built directly on a Graph with ComfyUI's type names; the metadata code
reads the graph only, so the model nodes need not be installed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from nodes.sd.metadata import a1111_parameters, png_text_chunks
from studio.core.graph import Graph, NodeMode
from studio.core.workflow import Workflow, load_workflow, to_comfy_api


class Txt2Img:
    """A plain text-to-image graph: checkpoint, two prompts, empty latent, sampler, decode, save."""

    def __init__(self, *, positive: str = "a red fox in the snow, highly detailed", negative: str = "blurry, lowres",
                 sampler: str = "euler_ancestral", scheduler: str = "normal", seed: int = 1234, steps: int = 25,
                 cfg: float = 7.5, denoise: float = 1.0, width: int = 512, height: int = 768,
                 ckpt: str = "sd15/dreamshaper_8.safetensors"):
        g = self.graph = Graph()
        self.ckpt = g.add_node("CheckpointLoaderSimple", {"ckpt_name": ckpt}).id
        self.pos = g.add_node("CLIPTextEncode", {"text": positive}).id
        self.neg = g.add_node("CLIPTextEncode", {"text": negative}).id
        self.latent = g.add_node("EmptyLatentImage", {"width": width, "height": height, "batch_size": 1}).id
        self.sampler = g.add_node("KSampler", {"seed": seed, "steps": steps, "cfg": cfg, "sampler_name": sampler,
                                               "scheduler": scheduler, "denoise": denoise}).id
        self.decode = g.add_node("VAEDecode").id
        self.save = g.add_node("SaveImage", {"filename_prefix": "fox"}).id
        g.connect(self.ckpt, 1, self.pos, "clip")
        g.connect(self.ckpt, 1, self.neg, "clip")
        g.connect(self.ckpt, 0, self.sampler, "model")
        g.connect(self.pos, 0, self.sampler, "positive")
        g.connect(self.neg, 0, self.sampler, "negative")
        g.connect(self.latent, 0, self.sampler, "latent_image")
        g.connect(self.sampler, 0, self.decode, "samples")
        g.connect(self.ckpt, 2, self.decode, "vae")
        g.connect(self.decode, 0, self.save, "images")

    def parameters(self) -> str:
        text = a1111_parameters(self.graph, self.save)
        assert text is not None
        return text


def fields(parameters: str) -> dict[str, str]:
    """The last line of an A1111 text, as A1111 reads it: ``key: value`` pairs split on commas."""
    last = parameters.splitlines()[-1]
    return dict(part.split(": ", 1) for part in last.split(", "))


# -- A1111 parameters ---------------------------------------------------------------------------------------
def test_a1111_parameters_of_a_txt2img_graph() -> None:
    text = Txt2Img().parameters()
    lines = text.splitlines()
    assert lines[0] == "a red fox in the snow, highly detailed"
    assert lines[1] == "Negative prompt: blurry, lowres"
    assert len(lines) == 3
    got = fields(text)
    assert got["Steps"] == "25"
    assert got["Sampler"] == "Euler a"
    assert got["CFG scale"] == "7.5"
    assert got["Seed"] == "1234"
    assert got["Size"] == "512x768"
    assert got["Model"] == "dreamshaper_8"
    assert "Denoising strength" not in got
    assert "Model hash" not in got  # never hashed: not computed while saving


def test_fields_come_in_a1111_order() -> None:
    keys = list(fields(Txt2Img().parameters()))
    order = ["Steps", "Sampler", "CFG scale", "Seed", "Size", "Model"]
    assert [k for k in keys if k in order] == order


@pytest.mark.parametrize(("sampler", "scheduler", "expected"), [
    ("euler_ancestral", "normal", "Euler a"),
    ("euler", "normal", "Euler"),
    ("dpmpp_2m", "karras", "DPM++ 2M Karras"),
    ("dpmpp_2m_sde", "exponential", "DPM++ 2M SDE Exponential"),
    ("dpmpp_sde", "karras", "DPM++ SDE Karras"),
    ("ddim", "ddim_uniform", "DDIM"),
    ("some_new_sampler", "normal", "some_new_sampler"),
])
def test_sampler_names_in_a1111_spelling(sampler: str, scheduler: str, expected: str) -> None:
    got = fields(Txt2Img(sampler=sampler, scheduler=scheduler).parameters())
    assert got["Sampler"] == expected
    assert got["Schedule type"] == scheduler


def test_seed_from_a_wired_seed_node() -> None:
    t = Txt2Img(seed=1)
    seed = t.graph.add_node("Seed", {"seed": 987654321}).id
    t.graph.connect(seed, 0, t.sampler, "seed")
    assert fields(t.parameters())["Seed"] == "987654321"


def test_seed_from_a_wired_int_primitive() -> None:
    t = Txt2Img(seed=1)
    value = t.graph.add_node("PrimitiveInt", {"value": 42}).id
    t.graph.connect(value, 0, t.sampler, "seed")
    assert fields(t.parameters())["Seed"] == "42"


def test_seed_computed_by_another_node_is_left_out_not_guessed() -> None:
    t = Txt2Img(seed=1)
    math = t.graph.add_node("MathInt", {"a": 1, "b": 2, "operation": "add"}).id
    t.graph.connect(math, 0, t.sampler, "seed")
    got = fields(t.parameters())
    assert "Seed" not in got
    assert got["Steps"] == "25"


def test_prompt_from_a_wired_string_primitive() -> None:
    t = Txt2Img()
    text = t.graph.add_node("PrimitiveStringMultiline", {"value": "a castle\non a hill"}).id
    t.graph.connect(text, 0, t.pos, "text")
    assert t.parameters().startswith("a castle\non a hill\nNegative prompt: blurry, lowres\n")


def test_empty_negative_prompt_has_no_line() -> None:
    lines = Txt2Img(negative="").parameters().splitlines()
    assert len(lines) == 2
    assert not any(line.startswith("Negative prompt") for line in lines)


def test_denoise_below_one_is_reported() -> None:
    assert fields(Txt2Img(denoise=0.55).parameters())["Denoising strength"] == "0.55"


def test_model_name_without_folder_and_extension() -> None:
    assert fields(Txt2Img(ckpt="SDXL/juggernautXL_v9.ckpt").parameters())["Model"] == "juggernautXL_v9"


def test_model_hash_once_the_model_was_hashed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from studio.models.files import sha256_file

    monkeypatch.setenv("NUANCE_MODELS_DIR", str(tmp_path / "models"))
    path = tmp_path / "models" / "checkpoints" / "sd15" / "dreamshaper_8.safetensors"
    path.parent.mkdir(parents=True)
    save_file({"w": torch.ones(3)}, str(path))
    t = Txt2Img()
    assert "Model hash" not in fields(t.parameters())
    digest = sha256_file(path)
    got = fields(t.parameters())
    assert got["Model hash"] == digest[:10]
    assert got["Model"] == "dreamshaper_8"


def test_ksampler_advanced_reads_noise_seed() -> None:
    t = Txt2Img()
    t.graph.nodes[t.sampler].type = "KSamplerAdvanced"
    t.graph.nodes[t.sampler].inputs = {"noise_seed": 77, "steps": 30, "cfg": 5.0, "sampler_name": "dpmpp_2m",
                                       "scheduler": "karras", "start_at_step": 0, "end_at_step": 10000}
    got = fields(t.parameters())
    assert got["Seed"] == "77"
    assert got["Steps"] == "30"
    assert got["Sampler"] == "DPM++ 2M Karras"


def test_no_sampler_means_no_parameters() -> None:
    graph = Graph()
    load = graph.add_node("LoadImage", {"image": "x.png"}).id
    save = graph.add_node("SaveImage", {"filename_prefix": "x"}).id
    graph.connect(load, 0, save, "images")
    assert a1111_parameters(graph, save) is None


def test_negative_prompt_through_a_controlnet_is_the_negative_one() -> None:
    """ControlNetApplyAdvanced carries both conditionings: each must be followed to its own prompt."""
    t = Txt2Img()
    g = t.graph
    loader = g.add_node("ControlNetLoader", {"control_net_name": "control_canny.safetensors"}).id
    hint = g.add_node("LoadImage", {"image": "edges.png"}).id
    apply = g.add_node("ControlNetApplyAdvanced", {"strength": 0.8, "start_percent": 0.0, "end_percent": 1.0}).id
    g.connect(t.pos, 0, apply, "positive")
    g.connect(t.neg, 0, apply, "negative")
    g.connect(loader, 0, apply, "control_net")
    g.connect(hint, 0, apply, "image")
    g.connect(apply, 0, t.sampler, "positive")
    g.connect(apply, 1, t.sampler, "negative")
    lines = t.parameters().splitlines()
    assert lines[0] == "a red fox in the snow, highly detailed"
    assert lines[1] == "Negative prompt: blurry, lowres"


def test_hires_fix_graph_reports_the_second_pass_and_the_base_size() -> None:
    t = Txt2Img(seed=5, steps=20)
    g = t.graph
    upscale = g.add_node("LatentUpscaleBy", {"upscale_method": "bislerp", "scale_by": 1.5}).id
    second = g.add_node("KSampler", {"seed": 6, "steps": 12, "cfg": 7.5, "sampler_name": "dpmpp_2m",
                                     "scheduler": "karras", "denoise": 0.5}).id
    g.connect(t.sampler, 0, upscale, "samples")
    g.connect(t.ckpt, 0, second, "model")
    g.connect(t.pos, 0, second, "positive")
    g.connect(t.neg, 0, second, "negative")
    g.connect(upscale, 0, second, "latent_image")
    g.connect(second, 0, t.decode, "samples")  # replaces the first sampler's link
    got = fields(t.parameters())
    assert got["Seed"] == "6"  # the pass that made the picture
    assert got["Steps"] == "12"
    assert got["Denoising strength"] == "0.5"
    assert got["Model"] == "dreamshaper_8"
    assert got["Size"] == "512x768"  # the empty latent's size, found through the first pass


# -- the three chunks together ------------------------------------------------------------------------------
def test_png_text_chunks_of_a_sampler_graph() -> None:
    t = Txt2Img()
    workflow = Workflow(t.graph, ui={"view": {"zoom": 1.5}}, meta={"name": "fox"})
    chunks = png_text_chunks(t.graph, t.save, workflow)
    assert set(chunks) == {"nuance", "prompt", "parameters"}
    assert chunks["parameters"] == t.parameters()

    restored = load_workflow(json.loads(chunks["nuance"]))
    assert restored.ui == {"view": {"zoom": 1.5}}
    assert restored.meta == {"name": "fox"}
    assert {n.id: (n.type, n.inputs) for n in restored.graph} == {n.id: (n.type, n.inputs) for n in t.graph}
    assert len(restored.graph.links) == len(t.graph.links)

    prompt = json.loads(chunks["prompt"])
    assert prompt[t.sampler]["class_type"] == "KSampler"
    assert prompt[t.sampler]["inputs"]["positive"] == [t.pos, 0]
    assert prompt[t.sampler]["inputs"]["seed"] == 1234
    assert prompt[t.decode]["inputs"]["vae"] == [t.ckpt, 2]
    # The prompt is itself a workflow: ComfyUI's API format loads back to the same graph.
    again = load_workflow(prompt)
    assert {n.id: (n.type, n.inputs) for n in again.graph} == {n.id: (n.type, n.inputs) for n in t.graph}


def test_prompt_covers_only_what_the_saver_needs() -> None:
    t = Txt2Img()
    other = t.graph.add_node("LoadImage", {"image": "unrelated.png"}).id
    preview = t.graph.add_node("PreviewImage").id
    t.graph.connect(other, 0, preview, "images")
    t.graph.set_mode(other, NodeMode.BYPASSED)  # elsewhere: does not stop this saver's prompt
    prompt = json.loads(png_text_chunks(t.graph, t.save)["prompt"])
    assert set(prompt) == {t.ckpt, t.pos, t.neg, t.latent, t.sampler, t.decode, t.save}


def test_bypassed_ancestor_drops_the_prompt_but_keeps_the_rest() -> None:
    t = Txt2Img()
    t.graph.set_mode(t.decode, NodeMode.BYPASSED)
    chunks = png_text_chunks(t.graph, t.save)
    assert "prompt" not in chunks
    assert "nuance" in chunks
    assert "Seed: 1234" in chunks["parameters"]


def test_no_graph_means_no_chunks() -> None:
    assert png_text_chunks(None, "1") == {}


def test_non_ascii_prompt_survives_in_the_chunks() -> None:
    t = Txt2Img(positive="renard roux, neige ❄, 狐")
    chunks = png_text_chunks(t.graph, t.save)
    assert chunks["parameters"].splitlines()[0] == "renard roux, neige ❄, 狐"
    assert "狐" in chunks["nuance"]
    assert json.loads(chunks["prompt"])[t.pos]["inputs"]["text"] == "renard roux, neige ❄, 狐"


# -- ComfyUI API prompt ----------------------------------------------------------------------------------------
def test_to_comfy_api_writes_links_constants_and_titles() -> None:
    graph = Graph()
    a = graph.add_node("PrimitiveInt", {"value": 3}, title="Steps").id
    b = graph.add_node("KSampler", {"steps": 99, "cfg": 8.0}).id
    graph.connect(a, 0, b, "steps")
    prompt = to_comfy_api(graph)
    assert prompt == {
        a: {"class_type": "PrimitiveInt", "inputs": {"value": 3}, "_meta": {"title": "Steps"}},
        b: {"class_type": "KSampler", "inputs": {"steps": [a, 0], "cfg": 8.0}},  # the link wins over the constant
    }
    json.dumps(prompt)  # plain JSON


def test_to_comfy_api_does_not_change_the_graph() -> None:
    graph = Graph()
    a = graph.add_node("PrimitiveInt", {"value": 3}).id
    b = graph.add_node("KSampler", {"steps": 99}).id
    graph.connect(a, 0, b, "steps")
    to_comfy_api(graph)
    assert graph.nodes[b].inputs == {"steps": 99}


def test_to_comfy_api_subset_and_modes() -> None:
    graph = Graph()
    a = graph.add_node("PrimitiveInt", {"value": 1}).id
    b = graph.add_node("PrimitiveInt", {"value": 2}, mode=NodeMode.MUTED).id
    assert set(to_comfy_api(graph, [a])) == {a}
    assert to_comfy_api(graph) is None
    assert to_comfy_api(graph, [b]) is None
    graph.set_mode(b, NodeMode.BYPASSED)
    assert to_comfy_api(graph) is None
    graph.set_mode(b, NodeMode.NORMAL)
    assert set(to_comfy_api(graph)) == {a, b}
