"""Image and latent nodes, run the way users run them: small graphs through the executor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from studio.api import Float, Int, Node, Output
from studio.core.graph import Graph, NodeMode
from studio.core.paths import data_dir, default_input_dir, find_input_file, input_file_candidates
from studio.core.workflow import Workflow, load_workflow
from studio.engine import Executor, RunOptions
from studio.imaging import read_png_text

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    return tmp_path / "outputs"


@pytest.fixture
def workflow_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


@pytest.fixture
def executor(registry, out_dir: Path, workflow_dir: Path) -> Executor:
    return Executor(registry, options=RunOptions(output_dir=out_dir, base_dir=workflow_dir))


def save_picture(path: Path, size: tuple[int, int] = (8, 6), color: tuple[int, ...] = RED, mode: str = "RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)
    return path


def load_graph(name: str) -> tuple[Graph, str]:
    graph = Graph()
    return graph, graph.add_node("LoadImage", {"image": name}).id


def run_ok(executor: Executor, graph: Graph, targets: list[str] | None = None):
    result = executor.run(graph, targets)
    assert result.ok, [(r.node_id, r.error or r.reason) for r in result.nodes.values()]
    return result


def as_color(pixel: torch.Tensor) -> tuple[int, ...]:
    return tuple(round(v * 255) for v in pixel.tolist())


# -- where input files are looked for -----------------------------------------------------------------
def test_input_file_candidates_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    base = tmp_path / "project"
    assert input_file_candidates("a/b.png", base) == [
        base / "a" / "b.png", base / "inputs" / "a" / "b.png", default_input_dir() / "a" / "b.png", tmp_path / "a" / "b.png"]
    assert input_file_candidates("b.png", None) == [default_input_dir() / "b.png", tmp_path / "b.png"]
    absolute = tmp_path / "x" / "pic.png"
    assert input_file_candidates(str(absolute), base) == [absolute]


def test_find_input_file_takes_the_first_existing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    base = tmp_path / "project"
    assert find_input_file("pic.png", base) is None
    in_cwd = save_picture(tmp_path / "pic.png")
    assert find_input_file("pic.png", base) == in_cwd
    in_user = save_picture(default_input_dir() / "pic.png")
    assert find_input_file("pic.png", base) == in_user
    in_inputs = save_picture(base / "inputs" / "pic.png")
    assert find_input_file("pic.png", base) == in_inputs
    beside = save_picture(base / "pic.png")
    assert find_input_file("pic.png", base) == beside
    (base / "folder.png").mkdir()
    assert find_input_file("folder.png", base) is None  # a folder is not an input file


# -- LoadImage ----------------------------------------------------------------------------------------------
def test_load_image_by_absolute_path(executor: Executor, tmp_path: Path) -> None:
    path = save_picture(tmp_path / "elsewhere" / "pic.png", (5, 4), GREEN)
    graph, load = load_graph(str(path))
    image, mask = run_ok(executor, graph, [load]).outputs[load]
    assert image.shape == (1, 4, 5, 3)
    assert mask.shape == (1, 4, 5)
    assert as_color(image[0, 0, 0]) == GREEN


def test_load_image_relative_to_the_workflow_folder(executor: Executor, workflow_dir: Path) -> None:
    save_picture(workflow_dir / "refs" / "pic.png", color=BLUE)
    graph, load = load_graph("refs/pic.png")
    image, _ = run_ok(executor, graph, [load]).outputs[load]
    assert as_color(image[0, 0, 0]) == BLUE


def test_load_image_from_the_workflow_inputs_folder(executor: Executor, workflow_dir: Path) -> None:
    save_picture(workflow_dir / "inputs" / "pic.png", color=GREEN)
    graph, load = load_graph("pic.png")
    image, _ = run_ok(executor, graph, [load]).outputs[load]
    assert as_color(image[0, 0, 0]) == GREEN


def test_load_image_from_the_user_inputs_folder(executor: Executor) -> None:
    save_picture(default_input_dir() / "pic.png", color=(10, 20, 30))
    graph, load = load_graph("pic.png")
    image, _ = run_ok(executor, graph, [load]).outputs[load]
    assert as_color(image[0, 0, 0]) == (10, 20, 30)


def test_file_beside_the_workflow_wins_over_the_inputs_folders(executor: Executor, workflow_dir: Path) -> None:
    save_picture(default_input_dir() / "pic.png", color=RED)
    save_picture(workflow_dir / "inputs" / "pic.png", color=GREEN)
    save_picture(workflow_dir / "pic.png", color=BLUE)
    graph, load = load_graph("pic.png")
    image, _ = run_ok(executor, graph, [load]).outputs[load]
    assert as_color(image[0, 0, 0]) == BLUE


def test_missing_image_error_lists_where_it_looked(executor: Executor, workflow_dir: Path) -> None:
    graph, load = load_graph("missing.png")
    result = executor.run(graph, [load])
    assert not result.ok
    record = result.nodes[load]
    assert record.status == "failed"
    assert "'missing.png'" in record.error
    assert "not found" in record.error
    for folder in (workflow_dir, workflow_dir / "inputs", default_input_dir()):
        assert str(folder) in record.error


def test_empty_image_name_is_a_clear_error(executor: Executor) -> None:
    graph, load = load_graph("  ")
    result = executor.run(graph, [load])
    assert result.nodes[load].status == "failed"
    assert "no image chosen" in result.nodes[load].error


def test_file_that_is_not_an_image(executor: Executor, workflow_dir: Path) -> None:
    (workflow_dir / "notes.png").write_text("hello", encoding="utf-8")
    graph, load = load_graph("notes.png")
    result = executor.run(graph, [load])
    assert result.nodes[load].status == "failed"
    assert "notes.png could not be read as an image" in result.nodes[load].error


def test_load_image_mask_is_one_minus_alpha(executor: Executor, workflow_dir: Path) -> None:
    path = workflow_dir / "cutout.png"
    picture = Image.new("RGBA", (4, 2), (0, 0, 255, 255))
    picture.putpixel((1, 0), (0, 0, 255, 0))
    picture.putpixel((2, 1), (0, 0, 255, 64))
    picture.save(path)
    graph, load = load_graph("cutout.png")
    image, mask = run_ok(executor, graph, [load]).outputs[load]
    assert image.shape == (1, 2, 4, 3)
    expected = torch.zeros(1, 2, 4)
    expected[0, 0, 1] = 1.0
    expected[0, 1, 2] = 1 - 64 / 255
    assert torch.allclose(mask, expected)


def test_load_image_reruns_only_when_the_file_content_changes(executor: Executor, workflow_dir: Path) -> None:
    path = save_picture(workflow_dir / "pic.png", color=RED)
    graph, load = load_graph("pic.png")
    first = run_ok(executor, graph, [load])
    assert first.nodes[load].status == "executed"

    again = run_ok(executor, graph, [load])
    assert again.nodes[load].status == "cached"

    path.write_bytes(path.read_bytes())  # touched, same content
    assert run_ok(executor, graph, [load]).nodes[load].status == "cached"

    save_picture(path, color=GREEN)  # same name, new picture
    changed = run_ok(executor, graph, [load])
    assert changed.nodes[load].status == "executed"
    assert as_color(changed.outputs[load][0][0, 0, 0]) == GREEN


def test_load_image_mask_from_a_painted_mask_file(executor: Executor, workflow_dir: Path) -> None:
    picture = Image.new("RGBA", (4, 2), (0, 0, 255, 0))  # fully transparent: the painted mask must win
    picture.save(workflow_dir / "cutout.png")
    painted = np.array([[0, 255, 128, 0], [255, 0, 0, 64]], dtype=np.uint8)
    (workflow_dir / "inputs").mkdir()
    Image.fromarray(painted, mode="L").save(workflow_dir / "inputs" / "cutout.mask.png")
    graph = Graph()
    load = graph.add_node("LoadImage", {"image": "cutout.png", "mask": "cutout.mask.png"}).id
    image, mask = run_ok(executor, graph, [load]).outputs[load]
    assert image.shape == (1, 2, 4, 3)
    assert torch.allclose(mask, torch.from_numpy(painted / 255.0).float().unsqueeze(0))

    Image.fromarray(255 - painted, mode="L").save(workflow_dir / "inputs" / "cutout.mask.png")
    changed = run_ok(executor, graph, [load])  # a repainted mask reruns the node
    assert changed.nodes[load].status == "executed"
    assert torch.allclose(changed.outputs[load][1], 1 - torch.from_numpy(painted / 255.0).float().unsqueeze(0))


def test_load_image_mask_of_another_size_names_both_sizes(executor: Executor, workflow_dir: Path) -> None:
    save_picture(workflow_dir / "pic.png", (8, 6))
    Image.new("L", (4, 4), 255).save(workflow_dir / "pic.mask.png")
    graph = Graph()
    load = graph.add_node("LoadImage", {"image": "pic.png", "mask": "pic.mask.png"}).id
    result = executor.run(graph, [load])
    assert not result.ok
    error = result.nodes[load].error
    assert "pic.mask.png is 4×4" in error and "pic.png is 8×6" in error


def test_load_image_without_a_mask_input_keeps_comfyui_behaviour(executor: Executor, workflow_dir: Path) -> None:
    save_picture(workflow_dir / "pic.png", (3, 2))
    graph = Graph()
    load = graph.add_node("LoadImage", {"image": "pic.png", "mask": ""}).id
    _, mask = run_ok(executor, graph, [load]).outputs[load]
    assert torch.equal(mask, torch.zeros(1, 2, 3))


# -- SaveImage --------------------------------------------------------------------------------------------
def save_graph(image_name: str, prefix: str = "Nuance") -> tuple[Graph, str, str]:
    graph, load = load_graph(image_name)
    save = graph.add_node("SaveImage", {"filename_prefix": prefix}).id
    graph.connect(load, 0, save, "images")
    return graph, load, save


def test_save_image_writes_a_png_in_the_output_folder(executor: Executor, workflow_dir: Path, out_dir: Path) -> None:
    save_picture(workflow_dir / "pic.png", (6, 4), (12, 34, 56))
    graph, _, save = save_graph("pic.png")
    result = run_ok(executor, graph)
    assert len(result.files) == 1
    path = Path(result.files[0])
    assert path.parent == out_dir.resolve()
    assert path.name == "Nuance_00001_.png"
    with Image.open(path) as saved:
        assert saved.size == (6, 4)
        assert saved.getpixel((3, 2)) == (12, 34, 56)
    assert result.nodes[save].ui["images"] == [str(path)]


def test_save_image_writes_one_file_per_batch_item(executor: Executor, workflow_dir: Path) -> None:
    frames = [Image.new("RGB", (4, 4), color) for color in (RED, GREEN, BLUE)]
    frames[0].save(workflow_dir / "anim.png", save_all=True, append_images=frames[1:])
    graph, _, _ = save_graph("anim.png")
    files = [Path(f) for f in run_ok(executor, graph).files]
    assert [f.name for f in files] == ["Nuance_00001_.png", "Nuance_00002_.png", "Nuance_00003_.png"]
    colors = []
    for path in files:
        with Image.open(path) as saved:
            colors.append(saved.getpixel((0, 0)))
    assert colors == [RED, GREEN, BLUE]


def test_save_image_never_overwrites(executor: Executor, workflow_dir: Path, out_dir: Path) -> None:
    out_dir.mkdir()
    (out_dir / "Nuance_00001_.png").write_bytes(b"older picture")
    (out_dir / "Nuance_00007_.png").write_bytes(b"another older picture")
    save_picture(workflow_dir / "pic.png", color=RED)
    graph, _, _ = save_graph("pic.png")
    first = Path(run_ok(executor, graph).files[0])
    assert first.name == "Nuance_00008_.png"
    assert (out_dir / "Nuance_00001_.png").read_bytes() == b"older picture"
    assert (out_dir / "Nuance_00007_.png").read_bytes() == b"another older picture"

    save_picture(workflow_dir / "pic.png", color=BLUE)  # a new picture: saved beside, not over
    second = Path(run_ok(executor, graph).files[0])
    assert second.name == "Nuance_00009_.png"
    with Image.open(first) as saved:
        assert saved.getpixel((0, 0)) == RED


def test_save_image_prefix_may_name_a_sub_folder(executor: Executor, workflow_dir: Path, out_dir: Path) -> None:
    save_picture(workflow_dir / "pic.png")
    graph, _, _ = save_graph("pic.png", prefix="portraits/face")
    path = Path(run_ok(executor, graph).files[0])
    assert path == (out_dir / "portraits" / "face_00001_.png").resolve()


def test_saved_png_carries_the_workflow(registry, executor: Executor, workflow_dir: Path) -> None:
    save_picture(workflow_dir / "pic.png", (8, 8))
    graph, load, save = save_graph("pic.png")
    scale = graph.add_node("ImageScale", {"upscale_method": "bilinear", "width": 4, "height": 0, "crop": "disabled"},
                           title="Shrink").id
    graph.connect(load, 0, scale, "image")
    graph.connect(scale, 0, save, "images")
    workflow = Workflow(graph, ui={"nodes": {load: {"pos": [10, 20]}}}, meta={"name": "shrink test"})
    result = executor.run(graph, options=RunOptions(output_dir=executor.options.output_dir,
                                                    base_dir=workflow_dir, workflow=workflow))
    assert result.ok
    chunks = read_png_text(Path(result.files[0]))

    restored = load_workflow(json.loads(chunks["nuance"]), registry)
    assert restored.placeholders == []
    assert restored.ui == {"nodes": {load: {"pos": [10, 20]}}}
    assert restored.meta == {"name": "shrink test"}
    got = restored.graph
    assert {n.id: (n.type, n.inputs, n.mode, n.title) for n in got} == {
        n.id: (n.type, n.inputs, n.mode, n.title) for n in graph}
    assert {(lk.from_node, lk.from_output, lk.to_node, lk.to_input) for lk in got.links.values()} == {
        (lk.from_node, lk.from_output, lk.to_node, lk.to_input) for lk in graph.links.values()}


def test_saved_png_carries_a_comfyui_prompt(executor: Executor, workflow_dir: Path) -> None:
    save_picture(workflow_dir / "pic.png")
    graph, load, save = save_graph("pic.png", prefix="cat")
    chunks = read_png_text(Path(run_ok(executor, graph).files[0]))
    prompt = json.loads(chunks["prompt"])
    assert prompt == {
        load: {"class_type": "LoadImage", "inputs": {"image": "pic.png"}},
        save: {"class_type": "SaveImage", "inputs": {"filename_prefix": "cat", "images": [load, 0]}},
    }
    assert "parameters" not in chunks  # no sampler: nothing to tell A1111 readers


def test_prompt_is_left_out_when_a_needed_node_is_bypassed(executor: Executor, workflow_dir: Path) -> None:
    save_picture(workflow_dir / "pic.png", (8, 8))
    graph, load, save = save_graph("pic.png")
    scale = graph.add_node("ImageScale", {"upscale_method": "bilinear", "width": 4, "height": 4, "crop": "disabled"}).id
    graph.connect(load, 0, scale, "image")
    graph.connect(scale, 0, save, "images")
    graph.set_mode(scale, NodeMode.BYPASSED)
    result = run_ok(executor, graph)
    path = Path(result.files[0])
    with Image.open(path) as saved:
        assert saved.size == (8, 8)  # the bypassed scale passed the picture through
    chunks = read_png_text(path)
    assert "prompt" not in chunks
    restored = load_workflow(json.loads(chunks["nuance"]))
    assert restored.graph.nodes[scale].mode is NodeMode.BYPASSED


def test_bypassed_node_in_another_branch_keeps_the_prompt(executor: Executor, workflow_dir: Path) -> None:
    save_picture(workflow_dir / "pic.png", (8, 8))
    graph, load, save = save_graph("pic.png")
    scale = graph.add_node("ImageScale", {"upscale_method": "bilinear", "width": 4, "height": 4, "crop": "disabled"},
                           mode=NodeMode.BYPASSED).id
    preview = graph.add_node("PreviewImage").id
    graph.connect(load, 0, scale, "image")
    graph.connect(scale, 0, preview, "images")
    result = run_ok(executor, graph)
    chunks = read_png_text(Path(result.files[0]))
    assert set(json.loads(chunks["prompt"])) == {load, save}


# -- PreviewImage ------------------------------------------------------------------------------------------
def test_preview_image_writes_to_the_temp_folder_only(executor: Executor, workflow_dir: Path, out_dir: Path) -> None:
    save_picture(workflow_dir / "pic.png", (5, 3), GREEN)
    graph, load = load_graph("pic.png")
    preview = graph.add_node("PreviewImage").id
    graph.connect(load, 0, preview, "images")
    result = run_ok(executor, graph)
    assert result.files == []
    assert not out_dir.exists() or not any(out_dir.rglob("*"))
    shown = [Path(p) for p in result.nodes[preview].ui["images"]]
    assert len(shown) == 1
    assert shown[0].parent == data_dir() / "temp"
    with Image.open(shown[0]) as picture:
        assert picture.size == (5, 3)
        assert picture.getpixel((0, 0)) == GREEN


# -- scaling images ---------------------------------------------------------------------------------------------
def scaled(executor: Executor, workflow_dir: Path, node_type: str, inputs: dict, size: tuple[int, int] = (100, 40),
           picture: Image.Image | None = None) -> torch.Tensor:
    (picture or Image.new("RGB", size, RED)).save(workflow_dir / "pic.png")
    graph, load = load_graph("pic.png")
    node = graph.add_node(node_type, inputs).id
    graph.connect(load, 0, node, "image")
    (image,) = run_ok(executor, graph, [node]).outputs[node]
    return image


@pytest.mark.parametrize(("width", "height", "expected"), [(50, 0, (20, 50)), (0, 80, (80, 200)), (30, 30, (30, 30)),
                                                             (0, 0, (40, 100))])
def test_image_scale_sizes_and_zero_keeps_aspect(executor: Executor, workflow_dir: Path, width: int, height: int,
                                                 expected: tuple[int, int]) -> None:
    image = scaled(executor, workflow_dir, "ImageScale",
                   {"upscale_method": "bilinear", "width": width, "height": height, "crop": "disabled"})
    assert image.shape == (1, *expected, 3)


def test_image_scale_center_crop(executor: Executor, workflow_dir: Path) -> None:
    picture = Image.new("RGB", (100, 40), RED)
    picture.paste(Image.new("RGB", (40, 40), GREEN), (30, 0))
    picture.paste(Image.new("RGB", (30, 40), BLUE), (70, 0))
    image = scaled(executor, workflow_dir, "ImageScale",
                   {"upscale_method": "nearest-exact", "width": 20, "height": 20, "crop": "center"}, picture=picture)
    assert image.shape == (1, 20, 20, 3)
    assert torch.allclose(image, torch.tensor([0.0, 1.0, 0.0]).expand(1, 20, 20, 3))


@pytest.mark.parametrize("method", ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"])
def test_image_scale_by_every_method(executor: Executor, workflow_dir: Path, method: str) -> None:
    picture = Image.fromarray(np.random.default_rng(5).integers(0, 256, size=(40, 100, 3), dtype=np.uint8))
    image = scaled(executor, workflow_dir, "ImageScaleBy", {"upscale_method": method, "scale_by": 1.5}, picture=picture)
    assert image.shape == (1, 60, 150, 3)
    assert image.min() >= 0.0 and image.max() <= 1.0


def test_image_scale_by_a_half(executor: Executor, workflow_dir: Path) -> None:
    image = scaled(executor, workflow_dir, "ImageScaleBy", {"upscale_method": "area", "scale_by": 0.5})
    assert image.shape == (1, 20, 50, 3)
    assert as_color(image[0, 10, 25]) == RED


def test_image_scale_to_total_pixels(executor: Executor, workflow_dir: Path) -> None:
    image = scaled(executor, workflow_dir, "ImageScaleToTotalPixels", {"upscale_method": "bicubic", "megapixels": 0.05})
    _, height, width, _ = image.shape
    assert width * height == pytest.approx(0.05 * 1024 * 1024, rel=0.02)
    assert width / height == pytest.approx(100 / 40, rel=0.02)


# -- latents -------------------------------------------------------------------------------------------------------
class NoiseLatent(Node):
    """Test-only: a latent full of random values, so resizing has something to move."""

    NAME = "NoiseLatent"
    INPUTS = [Int("width", 64), Int("height", 64), Int("seed", 0), Float("scale", 1.0)]
    OUTPUTS = [Output("LATENT", "LATENT")]

    def run(self, ctx, width, height, seed, scale):
        generator = torch.Generator().manual_seed(seed)
        return {"samples": torch.randn(1, 4, height // 8, width // 8, generator=generator) * scale}


def latent_run(executor: Executor, node_type: str, inputs: dict, source: dict | None = None):
    graph = Graph()
    if source is None:
        start = graph.add_node("EmptyLatentImage", {"width": 512, "height": 768, "batch_size": 2}).id
    else:
        spec = executor.registry.spec("test.NoiseLatent") or executor.registry.register(NoiseLatent, pack="test")
        start = graph.add_node(spec.type, source).id
    node = graph.add_node(node_type, inputs).id
    graph.connect(start, 0, node, "samples")
    result = run_ok(executor, graph, [start, node])
    return result.outputs[start][0], result.outputs[node][0]


@pytest.mark.parametrize(("width", "height", "batch"), [(512, 512, 1), (512, 768, 3), (1024, 576, 2)])
def test_empty_latent_shape_and_batch(executor: Executor, width: int, height: int, batch: int) -> None:
    graph = Graph()
    node = graph.add_node("EmptyLatentImage", {"width": width, "height": height, "batch_size": batch}).id
    (latent,) = run_ok(executor, graph, [node]).outputs[node]
    assert latent["samples"].shape == (batch, 4, height // 8, width // 8)
    assert latent["samples"].dtype == torch.float32
    assert torch.count_nonzero(latent["samples"]) == 0


METHODS = ["nearest-exact", "bilinear", "area", "bicubic", "bislerp"]


@pytest.mark.parametrize("method", METHODS)
def test_latent_upscale_sizes(executor: Executor, method: str) -> None:
    _, out = latent_run(executor, "LatentUpscale",
                        {"upscale_method": method, "width": 1024, "height": 640, "crop": "disabled"})
    assert out["samples"].shape == (2, 4, 80, 128)


@pytest.mark.parametrize(("width", "height", "expected"), [(1024, 0, (192, 128)), (0, 384, (48, 32)), (0, 0, (96, 64))])
def test_latent_upscale_zero_keeps_aspect(executor: Executor, width: int, height: int, expected: tuple[int, int]) -> None:
    _, out = latent_run(executor, "LatentUpscale",
                        {"upscale_method": "bilinear", "width": width, "height": height, "crop": "disabled"})
    assert out["samples"].shape == (2, 4, *expected)


@pytest.mark.parametrize("method", METHODS)
def test_latent_upscale_by_sizes(executor: Executor, method: str) -> None:
    _, out = latent_run(executor, "LatentUpscaleBy", {"upscale_method": method, "scale_by": 1.5})
    assert out["samples"].shape == (2, 4, 144, 96)  # 768×512 picture → 1152×768


@pytest.mark.parametrize("method", METHODS)
def test_latent_upscale_moves_real_values(executor: Executor, method: str) -> None:
    source, out = latent_run(executor, "LatentUpscaleBy", {"upscale_method": method, "scale_by": 2.0},
                             {"width": 64, "height": 48, "seed": 4, "scale": 1.0})
    assert out["samples"].shape == (1, 4, 12, 16)
    assert torch.isfinite(out["samples"]).all()
    # Every method keeps the picture: the result follows the source blown up pixel by pixel.
    blocky = source["samples"].repeat_interleave(2, dim=-1).repeat_interleave(2, dim=-2)
    correlation = torch.corrcoef(torch.stack([out["samples"].flatten(), blocky.flatten()]))[0, 1]
    assert correlation.item() > 0.6


def test_latent_upscale_bislerp_keeps_norms_between_the_source_norms(executor: Executor) -> None:
    source, out = latent_run(executor, "LatentUpscale",
                             {"upscale_method": "bislerp", "width": 136, "height": 40, "crop": "disabled"},
                             {"width": 64, "height": 40, "seed": 9, "scale": 3.0})
    assert out["samples"].shape == (1, 4, 5, 17)
    in_norms, out_norms = source["samples"].norm(dim=1), out["samples"].norm(dim=1)
    # Height is unchanged, so each output pixel mixes two horizontal neighbours of its row.
    old, new = 8, 17
    for x in range(new):
        pos = min(max((x + 0.5) * old / new - 0.5, 0.0), old - 1)
        left, right = int(pos), min(int(pos) + 1, old - 1)
        low = torch.minimum(in_norms[..., left], in_norms[..., right]) - 1e-4
        high = torch.maximum(in_norms[..., left], in_norms[..., right]) + 1e-4
        assert bool(((out_norms[..., x] >= low) & (out_norms[..., x] <= high)).all()), x


@pytest.mark.parametrize("method", METHODS)
def test_latent_upscale_by_one_is_identity(executor: Executor, method: str) -> None:
    source, out = latent_run(executor, "LatentUpscaleBy", {"upscale_method": method, "scale_by": 1.0},
                             {"width": 64, "height": 48, "seed": 1, "scale": 1.0})
    assert torch.allclose(out["samples"], source["samples"], atol=1e-5)
