"""Export to ComfyUI's API format: the library function, ``nuance export`` and File > Export."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from studio.cli import main
from studio.core.comfy_export import (
    COMFY_ADDED_INPUTS,
    COMFY_CORE_TYPES,
    OUR_EXTRA_INPUTS,
    ExportError,
    build_comfy_export,
    export_comfy_api,
)
from studio.core.resources import resource_path
from studio.core.workflow import load_workflow

EXAMPLES = ["txt2img", "img2img", "inpaint", "lora", "controlnet_canny"]


def make_workflow(registry, nodes, links=(), path=None):
    """A resolved workflow from ``nodes`` (dicts as in a file) and ``links`` (from, slot, to, input)."""
    data = {"format": "nuance.workflow", "version": 1, "graph": {
        "nodes": nodes,
        "links": [{"id": str(i), "from_node": f, "from_output": o, "to_node": t, "to_input": name}
                  for i, (f, o, t, name) in enumerate(links, 1)]}}
    if path is None:
        return load_workflow(data, registry)
    path.write_text(json.dumps(data), encoding="utf-8")
    return load_workflow(path, registry)


def structure(graph):
    """Node id -> (type, title, constants, {input: (from node, slot)}): what a round trip must keep."""
    return {node.id: (node.type, node.title, dict(node.inputs),
                      {link.to_input: (link.from_node, link.from_output) for link in graph.links_into(node.id)})
            for node in graph.nodes.values()}


@pytest.mark.parametrize("name", EXAMPLES)
def test_bundled_examples_round_trip_through_the_api_format(name, registry, tmp_path):
    workflow = load_workflow(resource_path("workflows", f"{name}.json"), registry)
    prompt = export_comfy_api(workflow, registry, files_dir=tmp_path)
    prompt = json.loads(json.dumps(prompt))  # plain JSON, as written to a file
    assert list(prompt) == list(workflow.graph.nodes)  # our ids, our order
    assert all(item["class_type"] in COMFY_CORE_TYPES for item in prompt.values())
    back = load_workflow(prompt, registry)
    assert back.source_format == "comfyui-api" and not back.placeholders and not back.warnings

    before, after = structure(workflow.graph), structure(back.graph)
    assert before.keys() == after.keys()
    for node_id, (node_type, title, constants, links) in before.items():
        got_type, got_title, got_constants, got_links = after[node_id]
        assert (got_type, got_title, got_links) == (node_type, title, links), node_id
        spec = registry.spec(node_type)
        dropped = set(OUR_EXTRA_INPUTS.get(node_type, ()))
        for input_name, value in constants.items():
            if input_name not in links and input_name not in dropped:
                assert got_constants[input_name] == value, (node_id, input_name)
        for input_name, value in got_constants.items():  # anything added is a default, never invented
            if input_name not in constants:
                added = COMFY_ADDED_INPUTS.get(node_type, {})
                expected = added[input_name] if input_name in added else spec.input_map[input_name].default
                assert value == expected, (node_id, input_name)
        assert not dropped & set(got_constants)
    assert not list(tmp_path.iterdir())  # no painted mask in the examples: nothing written


def test_titles_go_to_meta_and_missing_values_get_their_defaults(registry):
    workflow = make_workflow(registry, [
        {"id": "a", "type": "EmptyLatentImage", "title": "Canvas", "inputs": {"width": 256}},
        {"id": "b", "type": "PreviewAny"},
    ], [("a", 0, "b", "source")])
    prompt = export_comfy_api(workflow, registry, files_dir=None)
    assert prompt["a"] == {"class_type": "EmptyLatentImage", "_meta": {"title": "Canvas"},
                           "inputs": {"width": 256, "height": 512, "batch_size": 1}}
    assert prompt["b"] == {"class_type": "PreviewAny", "inputs": {"source": ["a", 0]}}


def test_bypassed_nodes_pass_their_matching_input_through(registry):
    workflow = make_workflow(registry, [
        {"id": "1", "type": "LoadImage", "inputs": {"image": "x.png"}},
        {"id": "2", "type": "ImageInvert", "mode": "bypassed"},
        {"id": "3", "type": "ColorPalette", "mode": "bypassed", "inputs": {"block_size": 8}},  # not core, but gone
        {"id": "4", "type": "ImageBlur", "inputs": {"blur_radius": 2, "sigma": 1.0}},
        {"id": "5", "type": "SaveImage", "inputs": {"filename_prefix": "p"}},
        {"id": "6", "type": "MathInt", "mode": "bypassed", "inputs": {"a": 320, "b": 1, "operation": "add"}},
        {"id": "7", "type": "EmptyLatentImage", "inputs": {"height": 64, "batch_size": 1}},
        {"id": "8", "type": "PreviewAny"},
    ], [("1", 0, "2", "image"), ("2", 0, "3", "image"), ("3", 0, "4", "image"), ("4", 0, "5", "images"),
        ("6", 0, "7", "width"), ("7", 0, "8", "source")])
    result = build_comfy_export(workflow, registry, files_dir=None)
    prompt = result.prompt
    assert set(prompt) == {"1", "4", "5", "7", "8"}
    assert prompt["4"]["inputs"]["image"] == ["1", 0]  # through two bypassed nodes
    assert prompt["7"]["inputs"]["width"] == 320  # a bypassed node's typed-in value passes as a value
    assert any("node 2 (ImageInvert) is bypassed" in note for note in result.notes)


def test_muted_nodes_and_what_needs_them_are_left_out(registry):
    workflow = make_workflow(registry, [
        {"id": "1", "type": "LoadImage", "inputs": {"image": "x.png"}},
        {"id": "2", "type": "ImageInvert", "mode": "muted"},
        {"id": "3", "type": "SaveImage", "inputs": {"filename_prefix": "gone"}},
        {"id": "4", "type": "InvertMask", "mode": "muted"},
        {"id": "5", "type": "ImageCompositeMasked", "inputs": {"x": 0, "y": 0, "resize_source": False}},
        {"id": "6", "type": "PreviewImage"},
        {"id": "7", "type": "SaveText", "mode": "muted", "inputs": {"filename_prefix": "t"}},  # not core, but muted
    ], [("1", 0, "2", "image"), ("2", 0, "3", "images"), ("1", 1, "4", "mask"), ("1", 0, "5", "destination"),
        ("1", 0, "5", "source"), ("4", 0, "5", "mask"), ("5", 0, "6", "images")])
    result = build_comfy_export(workflow, registry, files_dir=None)
    assert set(result.prompt) == {"1", "5", "6"}
    assert "mask" not in result.prompt["5"]["inputs"]  # an optional input wired to a muted node counts as unwired
    assert result.prompt["5"]["inputs"]["source"] == ["1", 0]
    notes = "\n".join(result.notes)
    assert "node 2 (ImageInvert) is muted" in notes
    assert "node 3 (SaveImage) is left out: it needs node 2 (ImageInvert), which is muted" in notes

    only_muted = make_workflow(registry, [
        {"id": "1", "type": "LoadImage", "inputs": {"image": "x.png"}},
        {"id": "2", "type": "PreviewImage", "mode": "muted"},
    ], [("1", 0, "2", "images")])
    with pytest.raises(ExportError, match="nothing to export"):
        export_comfy_api(only_muted, registry, files_dir=None)


def test_non_core_nodes_and_placeholders_are_refused_by_name(registry, tmp_path):
    ours = make_workflow(registry, [
        {"id": "1", "type": "PrimitiveInt", "inputs": {"value": 2}},
        {"id": "2", "type": "MathInt", "inputs": {"b": 3, "operation": "add"}},
        {"id": "3", "type": "PreviewAny"},
    ], [("1", 0, "2", "a"), ("2", 0, "3", "source")])
    with pytest.raises(ExportError, match=r"node 2 \(MathInt\) is not a ComfyUI core node"):
        export_comfy_api(ours, registry, files_dir=tmp_path)

    missing = make_workflow(registry, [
        {"id": "1", "type": "PrimitiveInt", "inputs": {"value": 2}},
        {"id": "9", "type": "someplugin.Thing", "inputs": {"x": 1}},
        {"id": "3", "type": "PreviewAny"},
    ], [("1", 0, "9", "x"), ("9", 0, "3", "source")])
    assert missing.placeholders == ["9"]
    with pytest.raises(ExportError, match=r"node 9 \(someplugin\.Thing\) is a node type not installed"):
        export_comfy_api(missing, registry, files_dir=tmp_path)
    assert not list(tmp_path.iterdir())


def painted(tmp_path, size=(6, 4), mask_size=None):
    """A picture with transparency (which the painted mask replaces) and its painted mask."""
    rng = np.random.default_rng(0)
    w, h = size
    rgba = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "pic.png")
    mw, mh = mask_size or size
    mask = rng.integers(0, 256, (mh, mw), dtype=np.uint8)
    mask[0, 0], mask[0, 1] = 0, 255
    Image.fromarray(mask, "L").save(tmp_path / "pic.png.mask.png")
    return rgba, mask


def masked_workflow(registry, tmp_path):
    return make_workflow(registry, [
        {"id": "1", "type": "LoadImage", "title": "Photo", "inputs": {"image": "pic.png", "mask": "pic.png.mask.png"}},
        {"id": "2", "type": "MaskToImage"},
        {"id": "3", "type": "SaveImage", "inputs": {"filename_prefix": "m"}},
    ], [("1", 1, "2", "mask"), ("2", 0, "3", "images")], path=tmp_path / "masked.json")


def test_a_painted_mask_is_baked_into_an_rgba_copy_of_the_picture(registry, tmp_path):
    rgba, mask = painted(tmp_path)
    workflow = masked_workflow(registry, tmp_path)
    out = tmp_path / "out"
    result = build_comfy_export(workflow, registry, files_dir=out)
    baked = out / "pic_masked.png"
    assert result.files == [baked]
    assert result.prompt["1"] == {"class_type": "LoadImage", "_meta": {"title": "Photo"},
                                  "inputs": {"image": "pic_masked.png"}}
    with Image.open(baked) as img:
        assert img.mode == "RGBA"
        pixels = np.asarray(img)
    assert np.array_equal(pixels[..., :3], rgba[..., :3])
    expected_alpha = np.round(255 * (1 - mask.astype(np.float64) / 255)).astype(np.uint8)
    assert np.array_equal(pixels[..., 3], expected_alpha)
    assert pixels[0, 0, 3] == 255 and pixels[0, 1, 3] == 0
    # ComfyUI's LoadImage reads MASK = 1 − alpha: the painted mask, exactly
    assert np.allclose(1.0 - pixels[..., 3] / 255.0, mask / 255.0, atol=1e-6)
    assert any(str(baked) in note and "ComfyUI's input folder" in note for note in result.notes)


def test_a_mask_of_another_size_or_nowhere_to_write_is_refused(registry, tmp_path):
    painted(tmp_path, size=(6, 4), mask_size=(5, 4))
    workflow = masked_workflow(registry, tmp_path)
    out = tmp_path / "out"
    with pytest.raises(ExportError, match=r"node 1 \(LoadImage\): mask pic.png.mask.png is 5×4 but image pic.png is 6×4"):
        export_comfy_api(workflow, registry, files_dir=out)
    assert not out.exists()
    with pytest.raises(ExportError, match="no folder was given"):
        export_comfy_api(workflow, registry, files_dir=None)


# -- nuance export ---------------------------------------------------------------------------------
def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_writes_the_prompt_to_stdout(capsys, registry, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "export", "--comfy-api", "txt2img")
    assert code == 0, err
    workflow = load_workflow(resource_path("workflows", "txt2img.json"), registry)
    assert json.loads(out) == export_comfy_api(workflow, registry, files_dir=None)
    assert not list(tmp_path.iterdir())


def test_cli_writes_the_prompt_and_baked_picture_to_a_file(capsys, registry, tmp_path):
    painted(tmp_path)
    masked_workflow(registry, tmp_path)
    target = tmp_path / "exported" / "api.json"
    code, out, err = run_cli(capsys, "export", "--comfy-api", tmp_path / "masked.json", "-o", target)
    assert code == 0, err
    assert out == ""
    prompt = json.loads(target.read_text(encoding="utf-8"))
    assert prompt["1"]["inputs"] == {"image": "pic_masked.png"}
    assert (target.parent / "pic_masked.png").is_file()
    assert f"wrote {target}" in err and "ComfyUI's input folder" in err


def test_cli_bakes_into_the_current_folder_when_writing_to_stdout(capsys, registry, tmp_path, monkeypatch):
    painted(tmp_path)
    masked_workflow(registry, tmp_path)
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    code, out, err = run_cli(capsys, "export", "--comfy-api", tmp_path / "masked.json")
    assert code == 0, err
    assert json.loads(out)["1"]["inputs"] == {"image": "pic_masked.png"}
    assert (here / "pic_masked.png").is_file()


@pytest.mark.parametrize("argv, fragment", [
    (["export", "--comfy-api", "hello"], "node 4 (MathInt)"),
    (["export", "txt2img"], "--comfy-api"),
    (["export", "--comfy-api", "no-such-workflow.json"], "no such file"),
])
def test_cli_refuses_what_cannot_be_exported_on_one_line(capsys, argv, fragment):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nuance: error: ") and fragment in lines[0], err


# -- File > Export > ComfyUI API format… --------------------------------------------------------------
@pytest.fixture
def window(qtbot, registry):
    from editor_support import open_window

    yield from open_window(qtbot, registry)


def test_menu_action_exports_the_current_graph(window, registry, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    painted(tmp_path)
    masked_workflow(registry, tmp_path)
    assert window.open_file(tmp_path / "masked.json")
    action = window.actions_by_name["export_comfy_api"]
    file_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&File")
    export_menu = next(a.menu() for a in file_menu.actions() if a.menu() is not None and a.text() == "&Export")
    assert action in export_menu.actions()

    target = tmp_path / "for-comfy" / "graph"
    target.parent.mkdir()
    asked = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: asked.append(a) or (str(target), ""))
    action.trigger()
    assert asked and asked[0][2].endswith("masked_api.json")
    written = target.with_suffix(".json")
    prompt = json.loads(written.read_text(encoding="utf-8"))
    assert prompt["1"]["inputs"] == {"image": "pic_masked.png"} and set(prompt) == {"1", "2", "3"}
    assert (target.parent / "pic_masked.png").is_file()
    message = window.statusBar().currentMessage()
    assert str(written) in message and "pic_masked.png" in message and "ComfyUI's input folder" in message


def test_menu_action_warns_about_what_cannot_be_exported(window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    assert window.open_example("hello")
    target = tmp_path / "hello_api.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    warnings = []
    window.warn = lambda title, text: warnings.append((title, text))
    window.actions_by_name["export_comfy_api"].trigger()
    assert not target.exists()
    assert len(warnings) == 1 and "node 4 (MathInt)" in warnings[0][1]

    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: ("", ""))  # cancelled: nothing happens
    assert window.export_comfy_api() is False and len(warnings) == 1


def test_every_type_called_core_is_installed_and_built_in(registry):
    from studio.core.comfy_export import COMFY_CORE_TYPES

    for node_type in COMFY_CORE_TYPES:
        spec = registry.spec(node_type)
        assert spec is not None and spec.pack is None and spec.type == node_type, node_type
