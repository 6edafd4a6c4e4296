"""ComfyUI editor-format (UI) files: import, placeholders, save round trip, PNG chunks, and runs.

The files in tests/fixtures/comfyui are written by make_fixtures.py in ComfyUI's own layout, with
widget values spelled out in ComfyUI's order, independently of our node declarations.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import tiny_models
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from studio.cli import main
from studio.core.errors import GraphValidationError
from studio.core.graph import NodeMode
from studio.core.png_text import load_png_workflow
from studio.core.resources import resource_path
from studio.core.validate import check_graph
from studio.core.workflow import load_workflow, save_workflow, workflow_to_dict
from studio.engine import Executor

FIXTURES = Path(__file__).parent / "fixtures" / "comfyui"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def links_of(workflow) -> set[tuple[str, int, str, str]]:
    return {(link.from_node, link.from_output, link.to_node, link.to_input) for link in workflow.graph.links.values()}


def test_the_default_graph_maps_types_values_links_and_layout(registry):
    workflow = load_workflow(FIXTURES / "txt2img_v04.json", registry)
    assert workflow.source_format == "comfyui-ui" and workflow.placeholders == [] and workflow.warnings == []
    nodes = workflow.graph.nodes
    assert {n.id: n.type for n in nodes.values()} == {
        "4": "CheckpointLoaderSimple", "6": "CLIPTextEncode", "7": "CLIPTextEncode", "5": "EmptyLatentImage",
        "3": "KSampler", "8": "VAEDecode", "9": "SaveImage"}
    # The seed's "control after generate" value is not taken for the next widget.
    assert nodes["3"].inputs == {"seed": 7, "steps": 12, "cfg": 5.0, "sampler_name": "euler", "scheduler": "normal",
                                 "denoise": 1.0}
    assert nodes["5"].inputs == {"width": 64, "height": 64, "batch_size": 1}
    assert nodes["6"].title == "Positive" and nodes["9"].inputs == {"filename_prefix": "ComfyUI"}
    assert links_of(workflow) == {
        ("4", 0, "3", "model"), ("5", 0, "3", "latent_image"), ("4", 1, "6", "clip"), ("6", 0, "3", "positive"),
        ("4", 1, "7", "clip"), ("7", 0, "3", "negative"), ("3", 0, "8", "samples"), ("4", 2, "8", "vae"),
        ("8", 0, "9", "images")}
    ui_nodes = workflow.ui["nodes"]
    assert ui_nodes["3"]["pos"] == [863.0, 186.0] and ui_nodes["3"]["size"] == [315.0, 262.0]
    assert ui_nodes["3"]["controls"] == {"seed": "fixed"}
    assert ui_nodes["7"]["color"] == "#553333"  # litegraph's short colour, spelled out
    check_graph(workflow.graph, registry)


def test_every_editor_feature(registry):
    workflow = load_workflow(FIXTURES / "features_v04.json", registry)
    nodes, ui = workflow.graph.nodes, workflow.ui
    # PrimitiveNode: one value shared by two inputs, as a primitive wired to both.
    assert nodes["6"].type == "PrimitiveInt" and nodes["6"].inputs == {"value": 1234} and nodes["6"].title == "Shared seed"
    assert {("6", 0, "7", "seed"), ("6", 0, "8", "noise_seed")} <= links_of(workflow)
    assert "seed" not in nodes["7"].inputs and "noise_seed" not in nodes["8"].inputs  # the wire gives them
    # The seed widgets' control values; True (old files) means randomize.
    assert ui["nodes"]["7"]["controls"] == {"seed": "increment"} and ui["nodes"]["8"]["controls"] == {"noise_seed": "randomize"}
    assert nodes["8"].inputs["steps"] == 9 and nodes["8"].inputs["return_with_leftover_noise"] == "disable"
    # Reroute: gone as a node, its wires start at the checkpoint loader and bend where it stood.
    assert "2" not in nodes
    assert {("1", 0, "7", "model"), ("1", 0, "8", "model")} <= links_of(workflow)
    assert ui["reroutes"] == {"5": [[387.5, 53.0]], "6": [[387.5, 53.0]]}
    # Modes, collapsed, titles.
    assert nodes["8"].mode is NodeMode.BYPASSED and nodes["10"].mode is NodeMode.MUTED
    assert ui["nodes"]["4"]["collapsed"] is True and nodes["13"].title == "Keep"
    assert nodes["13"].inputs == {"filename_prefix": "features/run"}  # a Windows sub-folder of the output folder
    # Windows model path; a missing file is reported with the closest matches.
    assert nodes["1"].inputs["ckpt_name"] == "sd15/tiny-sd15.safetensors"
    assert any("sd15/tiny-sd15.safetensors" in w and "closest" in w for w in workflow.warnings)
    # Groups and notes (Note and MarkdownNote) on the canvas.
    assert [(g["title"], g["bounding"], g["color"]) for g in ui["groups"]] == [
        ("Sampling", [780.0, -80.0, 400.0, 700.0], "#3f789e"), ("Output", [1180.0, -80.0, 600.0, 400.0], "#b58b2a")]
    assert [(n["text"], n["pos"]) for n in ui["notes"]] == [
        ("Read me: the seed is shared.", [0.0, 400.0]), ("# Heading\nSome *markdown*.", [0.0, 600.0])]
    # A custom node we do not have: a placeholder that keeps its values and says what is missing.
    assert workflow.placeholders == ["12"] and nodes["12"].type == "SDXLPromptStyler"
    assert nodes["12"].extra["comfy"]["widgets_values"] == ["a castle", "ugly", "sai-anime", True]
    with pytest.raises(GraphValidationError, match="SDXLPromptStyler"):
        check_graph(workflow.graph, registry, targets=["12"])


def test_save_and_import_again_keeps_everything(registry, tmp_path):
    first = load_workflow(FIXTURES / "features_v04.json", registry)
    saved = save_workflow(first, tmp_path / "features.json")
    second = load_workflow(saved, registry)
    assert workflow_to_dict(second) == workflow_to_dict(first)
    original = next(n for n in fixture("features_v04")["nodes"] if n["id"] == 12)
    kept = second.graph.nodes["12"].extra["comfy"]
    assert {k: kept[k] for k in ("widgets_values", "inputs", "outputs", "properties")} == {
        k: original[k] for k in ("widgets_values", "inputs", "outputs", "properties")}


def test_schema_1_with_a_subgraph_is_flattened_into_a_group(registry):
    workflow = load_workflow(FIXTURES / "hires_subgraph_v1.json", registry)
    nodes = workflow.graph.nodes
    assert workflow.placeholders == [] and "30" not in nodes
    assert nodes["30:21"].type == "LatentUpscaleBy"
    assert nodes["30:21"].inputs == {"upscale_method": "nearest-exact", "scale_by": 1.5}
    assert nodes["30:22"].inputs["denoise"] == 0.5 and workflow.ui["nodes"]["30:22"]["controls"] == {"seed": "randomize"}
    assert {("4", 0, "30:22", "model"), ("6", 0, "30:22", "positive"), ("7", 0, "30:22", "negative"),
            ("3", 0, "30:21", "samples"), ("30:21", 0, "30:22", "latent_image"),
            ("30:22", 0, "8", "samples")} <= links_of(workflow)
    group = next(g for g in workflow.ui["groups"] if g["title"] == "Hires fix")
    x, y, w, h = group["bounding"]
    for inner in ("30:21", "30:22"):
        px, py = workflow.ui["nodes"][inner]["pos"]
        assert x <= px <= x + w and y <= py <= y + h
    # What stood right of the subgraph moved right, so nothing overlaps.
    assert workflow.ui["nodes"]["8"]["pos"][0] >= x + w - 20
    check_graph(workflow.graph, registry)


def test_an_unknown_node_does_not_stop_the_rest_from_running(registry):
    data = {"last_node_id": 3, "last_link_id": 1, "version": 0.4, "nodes": [
        {"id": 1, "type": "PrimitiveNode", "pos": [0, 0], "mode": 0,
         "outputs": [{"name": "INT", "type": "INT", "links": [1], "widget": {"name": "value"}}], "widgets_values": [41, "fixed"]},
        {"id": 2, "type": "PreviewAny", "pos": [300, 0], "mode": 0, "inputs": [{"name": "source", "type": "*", "link": 1}],
         "widgets_values": [None, None, False]},
        {"id": 3, "type": "WAS_Image_Blend", "pos": [0, 300], "mode": 0,
         "inputs": [{"name": "image_a", "type": "IMAGE", "link": None}],
         "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": []}], "widgets_values": [50]}],
        "links": [[1, 1, 0, 2, 0, "INT"]]}
    workflow = load_workflow(data, registry)
    assert workflow.placeholders == ["3"] and workflow.warnings == []
    result = Executor(registry).run(workflow.graph, targets=["2"])
    assert result.ok and result.nodes["2"].ui["text"] == "41"


def test_png_with_both_chunks_opens_the_editor_workflow_and_falls_back_to_the_prompt(registry, tmp_path):
    ui = fixture("txt2img_v04")
    prompt = {"3": {"class_type": "PrimitiveInt", "inputs": {"value": 5}}}
    info = PngInfo()
    info.add_text("prompt", json.dumps(prompt))
    info.add_text("workflow", json.dumps(ui))
    path = tmp_path / "ComfyUI_00001_.png"
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    workflow = load_png_workflow(path, registry)
    assert workflow.source_format == "comfyui-ui" and workflow.graph.nodes["3"].type == "KSampler"
    assert load_workflow(path, registry).source_format == "comfyui-ui"  # `nuance run picture.png` reads it too

    broken = PngInfo()
    broken.add_text("workflow", json.dumps({"nodes": [{"id": 1, "type": "KSampler", "pos": "nowhere"}], "links": "x"}))
    broken.add_text("prompt", json.dumps(prompt))
    Image.new("RGB", (8, 8)).save(path, pnginfo=broken)
    workflow = load_png_workflow(path, registry)
    assert workflow.source_format == "comfyui-api" and workflow.graph.nodes["3"].inputs == {"value": 5}


def test_a_missing_model_is_reported_with_the_closest_names(registry, tmp_path, monkeypatch):
    models = tmp_path / "models"
    tiny_models.write_tiny_single_file(models / "checkpoints" / "sd15" / "tiny-sd15.safetensors")
    monkeypatch.setenv("NUANCE_MODELS_DIR", str(models))
    workflow = load_workflow(FIXTURES / "features_v04.json", registry)
    assert workflow.graph.nodes["1"].inputs["ckpt_name"] == "sd15/tiny-sd15.safetensors"
    assert not any("ckpt_name" in w for w in workflow.warnings)  # the Windows path found the file
    workflow.graph.set_input("1", "ckpt_name", "tiny_sd15.safetensors")
    with pytest.raises(GraphValidationError, match=r"the closest: 'sd15/tiny-sd15.safetensors'"):
        check_graph(workflow.graph, registry)


# -- runs ------------------------------------------------------------------------------------------
TYPICAL = ["txt2img_v04", "img2img_v04", "lora_v04", "controlnet_v04", "inpaint_v04", "outpaint_v04", "hires_v04",
           "hires_subgraph_v1", "embedding_v04"]


def _in_a_folder(tmp_path: Path, name: str) -> Path:
    """The fixture beside the pictures it loads, as a user's workflow folder would be."""
    folder = tmp_path / "work"
    shutil.copytree(resource_path("workflows", "inputs"), folder / "inputs")
    shutil.copy(FIXTURES / f"{name}.json", folder / f"{name}.json")
    return folder / f"{name}.json"


@pytest.mark.slow
@pytest.mark.parametrize("name", TYPICAL)
def test_typical_workflows_run_from_the_command_line(tmp_path, name):
    path = _in_a_folder(tmp_path, name)
    argv = ["run", str(path), "--quiet", "--output-dir", str(tmp_path / "out"), "--report", str(tmp_path / "report.json")]
    if name == "embedding_v04":  # a two-vector textual inversion for the demo model's 64-wide CLIP
        import torch
        from safetensors.torch import save_file

        (tmp_path / "models" / "embeddings").mkdir(parents=True)
        save_file({"emb_params": torch.randn(2, 64)}, str(tmp_path / "models" / "embeddings" / "ink.safetensors"))
        argv += ["--models-dir", str(tmp_path / "models")]
    code = main(argv)
    report = json.loads((tmp_path / "report.json").read_text())
    assert code == 0, report
    run = report["runs"][0]
    assert all(node["status"] == "executed" for node in run["nodes"].values()), run["nodes"]
    pictures = [Image.open(p) for p in run["outputs"] if p.endswith(".png")]
    expected = {"outpaint_v04": (96, 64), "hires_v04": (96, 96), "hires_subgraph_v1": (96, 96)}.get(name, (64, 64))
    assert pictures and all(p.size == expected for p in pictures)
    if name == "hires_v04":
        sampler = run["nodes"]["13"]
        assert sampler["status"] == "executed"


@pytest.mark.slow
def test_the_feature_file_runs_on_a_tiny_model_with_its_windows_path(tmp_path):
    models = tmp_path / "models"
    tiny_models.write_tiny_single_file(models / "checkpoints" / "sd15" / "tiny-sd15.safetensors")
    report = tmp_path / "report.json"
    code = main(["run", str(FIXTURES / "features_v04.json"), "--quiet", "--models-dir", str(models),
                 "--output-dir", str(tmp_path / "out"), "--report", str(report)])
    data = json.loads(report.read_text())
    assert code == 0, data
    nodes = data["runs"][0]["nodes"]
    assert (nodes["13"]["status"] == "executed" and "11" not in nodes) or nodes["11"]["status"] == "skipped"
    assert "12" not in nodes  # the custom node is not needed by any output
    saved = [Image.open(p) for p in data["runs"][0]["outputs"]]
    assert len(saved) == 2 and all(p.size == (64, 48) for p in saved)


def test_a_custom_pack_node_sharing_a_name_with_one_of_ours_stays_a_placeholder(registry):
    data = {"last_node_id": 1, "last_link_id": 0, "version": 0.4, "links": [], "nodes": [
        {"id": 1, "type": "InpaintCrop", "pos": [0, 0], "mode": 0, "widgets_values": [20, 1.0, True, 16, False],
         "properties": {"cnr_id": "comfyui-inpaint-cropandstitch", "ver": "2.1.7"}},
        {"id": 2, "type": "KSampler", "pos": [0, 300], "mode": 0, "widgets_values": [1, "fixed", 20, 8, "euler", "normal", 1],
         "properties": {"cnr_id": "comfy-core"}}]}
    workflow = load_workflow(data, registry)
    node = workflow.graph.nodes["1"]
    assert node.type == "comfyui-inpaint-cropandstitch.InpaintCrop" and workflow.placeholders == ["1"]
    assert node.extra["comfy"]["widgets_values"] == [20, 1.0, True, 16, False]
    assert "custom node pack" in workflow.warnings[0]
    assert workflow.graph.nodes["2"].type == "KSampler" and workflow.graph.nodes["2"].inputs["steps"] == 20


@pytest.mark.slow
def test_an_sdxl_workflow_runs_with_its_sdxl_encoders(tmp_path):
    from test_sd_archs import write_tiny_sdxl

    models = tmp_path / "models"
    (models / "checkpoints").mkdir(parents=True)
    write_tiny_sdxl(models / "checkpoints" / "xl.safetensors")
    workflow = load_workflow(FIXTURES / "sdxl_v04.json")
    report = tmp_path / "report.json"
    code = main(["run", str(FIXTURES / "sdxl_v04.json"), "--quiet", "--models-dir", str(models),
                 "--output-dir", str(tmp_path / "out"), "--report", str(report)])
    data = json.loads(report.read_text())
    assert code == 0, data
    assert workflow.graph.nodes["3"].extra["comfy"]["widgets_values"][4] == "dpmpp_2m_sde_gpu"
    [saved] = data["runs"][0]["outputs"]
    assert Image.open(saved).size == (64, 64)



def test_a_chain_of_reroutes_becomes_bends_and_a_reroute_fed_by_nothing_drops_its_wires(registry):
    def reroute(node_id, x, link_in, links_out):
        return {"id": node_id, "type": "Reroute", "pos": [x, 0], "size": [75, 26], "mode": 0,
                "inputs": [{"name": "", "type": "*", "link": link_in}],
                "outputs": [{"name": "", "type": "INT", "links": links_out}]}

    data = {"last_node_id": 6, "last_link_id": 5, "version": 0.4, "nodes": [
        {"id": 1, "type": "PrimitiveNode", "pos": [0, 0], "mode": 0,
         "outputs": [{"name": "INT", "type": "INT", "links": [1], "widget": {"name": "value"}}], "widgets_values": [3, "fixed"]},
        reroute(2, 200, 1, [2]), reroute(3, 400, 2, [3]), reroute(5, 400, None, [5]),
        {"id": 4, "type": "PreviewAny", "pos": [600, 0], "mode": 0, "inputs": [{"name": "source", "type": "*", "link": 3}]},
        {"id": 6, "type": "PreviewAny", "pos": [600, 200], "mode": 0, "inputs": [{"name": "source", "type": "*", "link": 5}]}],
        "links": [[1, 1, 0, 2, 0, "INT"], [2, 2, 0, 3, 0, "INT"], [3, 3, 0, 4, 0, "INT"], [5, 5, 0, 6, 0, "INT"]]}
    workflow = load_workflow(data, registry)
    assert links_of(workflow) == {("1", 0, "4", "source")}
    assert workflow.ui["reroutes"] == {"3": [[237.5, 13.0], [437.5, 13.0]]}
    assert any("link 5" in w and "reroute that nothing feeds" in w for w in workflow.warnings)
