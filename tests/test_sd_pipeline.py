"""The bundled txt2img and img2img workflows end to end through ``nuance run`` (``main(argv)``, in-process),
on a tiny seeded SD 1 model written once as a single file and as a diffusers folder; plus ``nuance models``.

Pictures are 64×64 and runs take 2 steps, so the whole file stays fast on a CPU.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tiny_models  # tests/ is on sys.path (pytest's default import mode)
from PIL import Image

from studio.cli import main
from studio.models import folders
from studio.models.memory import model_manager

SINGLE, DIFFUSERS, INPAINT = "tiny.safetensors", "tinydiff", "tiny-inpaint.safetensors"
FORMS = [SINGLE, DIFFUSERS]
SAMPLER_AND_AFTER = {"3", "8", "9"}
_REPORTS = itertools.count(1)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """<tmp>/checkpoints/ with the tiny model as one file and as a diffusers folder, and an inpainting variant."""
    root = tmp_path_factory.mktemp("sd_pipeline_models")
    tiny_models.write_tiny_single_file(root / "checkpoints" / SINGLE, seed=0)
    tiny_models.write_tiny_diffusers(root / "checkpoints" / DIFFUSERS, seed=0)
    tiny_models.write_tiny_single_file(root / "checkpoints" / INPAINT, seed=0, inpaint=True)
    return root


@pytest.fixture(autouse=True)
def _restore_models_override(monkeypatch: pytest.MonkeyPatch) -> None:
    """``nuance run`` sets the process-wide --models-dir override; undo it after each test."""
    monkeypatch.setattr(folders, "_override", None)


@pytest.fixture
def fresh_manager():
    """No models loaded at the start (so the first use loads from disk), none left behind."""
    model_manager().free_memory()
    yield model_manager()
    model_manager().free_memory()


@pytest.fixture
def small_png(tmp_path: Path) -> Path:
    """A 64×64 picture with structure (gradients and a disc), instead of the bundled 512×512 example."""
    y, x = np.mgrid[0:64, 0:64].astype(np.float32) / 63
    disc = ((x - 0.3) ** 2 + (y - 0.6) ** 2 < 0.05).astype(np.float32)
    rgb = np.stack([x * (1 - disc) + disc, y, 1 - x], axis=-1)
    path = tmp_path / "small.png"
    Image.fromarray((rgb * 255).round().astype(np.uint8)).save(path)
    return path


def nuance_run(capsys: pytest.CaptureFixture[str], models_dir: Path, out_dir: Path, workflow: str, *args: Any,
               ckpt: str = SINGLE, steps: int = 2) -> tuple[int, dict[str, Any], str, str]:
    """Run a bundled workflow at 64×64; returns (exit code, report, stdout, stderr)."""
    report = out_dir.parent / f"report-{next(_REPORTS)}.json"
    argv = ["run", workflow, "--device", "cpu", "--models-dir", models_dir, "--output-dir", out_dir, "--report", report,
            "--set", f"4.ckpt_name={ckpt}", "--set", f"3.steps={steps}"]
    if workflow == "txt2img":
        argv += ["--set", "5.width=64", "--set", "5.height=64"]
    code = main([str(a) for a in [*argv, *args]])
    captured = capsys.readouterr()
    return code, json.loads(report.read_text(encoding="utf-8")), captured.out, captured.err


def pixels(path: str | Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def node_statuses(run: dict[str, Any]) -> dict[str, str]:
    return {node_id: node["status"] for node_id, node in run["nodes"].items()}


def check_saved_png(path: str, *, ckpt: str, seed: int, size: int = 64) -> dict[str, str]:
    """The saved picture: a PNG of the requested size carrying our workflow, a ComfyUI prompt and A1111 text."""
    file = Path(path)
    assert file.is_file() and file.suffix == ".png"
    with Image.open(file) as image:
        assert image.format == "PNG"
        assert image.size == (size, size)
        image.load()
        chunks = dict(image.text)
    assert {"nuance", "prompt", "parameters"} <= set(chunks)
    workflow = json.loads(chunks["nuance"])
    assert workflow["format"] == "nuance.workflow"
    nodes = {n["id"]: n for n in workflow["graph"]["nodes"]}
    assert nodes["4"]["inputs"]["ckpt_name"] == ckpt
    assert nodes["3"]["inputs"]["seed"] == seed
    prompt = json.loads(chunks["prompt"])
    assert prompt["3"]["class_type"] == "KSampler" and prompt["3"]["inputs"]["seed"] == seed
    assert prompt["4"]["inputs"]["ckpt_name"] == ckpt
    assert f"Seed: {seed}" in chunks["parameters"] and "Steps: 2" in chunks["parameters"]
    return chunks


# -- txt2img and img2img, both model layouts -------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("ckpt", FORMS)
def test_txt2img_end_to_end(capsys, models_dir, tmp_path, ckpt):
    code, report, out, err = nuance_run(capsys, models_dir, tmp_path / "out", "txt2img", "--set", "3.seed=42", ckpt=ckpt)
    assert code == 0, err
    [run] = report["runs"]
    assert run["status"] == "succeeded"
    assert node_statuses(run) == dict.fromkeys(["3", "4", "5", "6", "7", "8", "9"], "executed")
    assert run["nodes"]["4"]["type"] == "CheckpointLoaderSimple" and run["nodes"]["3"]["type"] == "KSampler"
    [saved] = run["outputs"]
    assert Path(saved).parent == (tmp_path / "out").resolve()
    assert f"saved {saved}" in out
    chunks = check_saved_png(saved, ckpt=ckpt, seed=42)
    assert "Size: 64x64" in chunks["parameters"]
    assert "a red circle on a blue background" in chunks["parameters"]
    picture = pixels(saved)
    assert picture.std() > 1  # not a flat fill


@pytest.mark.slow
def test_single_file_and_diffusers_folder_make_the_same_picture(capsys, models_dir, tmp_path):
    saved = {}
    for ckpt in FORMS:
        code, report, _, err = nuance_run(capsys, models_dir, tmp_path / ckpt, "txt2img", "--set", "3.seed=3", ckpt=ckpt)
        assert code == 0, err
        saved[ckpt] = pixels(report["runs"][0]["outputs"][0])
    np.testing.assert_array_equal(saved[SINGLE], saved[DIFFUSERS])


@pytest.mark.slow
@pytest.mark.parametrize("ckpt", FORMS)
def test_img2img_end_to_end(capsys, models_dir, tmp_path, small_png, ckpt):
    code, report, _, err = nuance_run(capsys, models_dir, tmp_path / "out", "img2img", "--set", f"10.image={small_png}",
                                      "--set", "3.seed=5", ckpt=ckpt)
    assert code == 0, err
    [run] = report["runs"]
    assert run["status"] == "succeeded"
    assert node_statuses(run) == dict.fromkeys(["3", "4", "6", "7", "8", "9", "10", "11"], "executed")
    assert run["nodes"]["11"]["type"] == "VAEEncode"
    [saved] = run["outputs"]
    chunks = check_saved_png(saved, ckpt=ckpt, seed=5)
    assert "Denoising strength: 0.5" in chunks["parameters"]  # the bundled img2img default


# -- seeds ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_same_seed_same_pixels_across_separate_runs_and_another_seed_differs(capsys, models_dir, tmp_path, fresh_manager):
    runs = []
    for seed in (7, 7, 8):
        fresh_manager.free_memory()  # each run also reloads the checkpoint from disk
        code, report, _, err = nuance_run(capsys, models_dir, tmp_path / "out", "txt2img", "--set", f"3.seed={seed}")
        assert code == 0, err
        runs.append(report["runs"][0]["outputs"][0])
    assert len(set(runs)) == 3  # three files, none overwritten
    first, again, other = (pixels(p) for p in runs)
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).mean() > 2


@pytest.mark.slow
def test_batch_item_one_equals_a_single_run_with_the_next_seed(capsys, models_dir, tmp_path):
    code, report, _, err = nuance_run(capsys, models_dir, tmp_path / "batch", "txt2img", "--set", "3.seed=30",
                                      "--set", "5.batch_size=2")
    assert code == 0, err
    batch = [pixels(p) for p in report["runs"][0]["outputs"]]
    assert len(batch) == 2
    singles = []
    for seed in (30, 31):
        code, report, _, err = nuance_run(capsys, models_dir, tmp_path / f"single{seed}", "txt2img", "--set", f"3.seed={seed}")
        assert code == 0, err
        singles.append(pixels(report["runs"][0]["outputs"][0]))
    # Equal up to one 8-bit step (batched and single convolutions round differently).
    assert np.abs(batch[0] - singles[0]).max() <= 1
    assert np.abs(batch[1] - singles[1]).max() <= 1
    assert np.abs(batch[0] - batch[1]).mean() > 2


@pytest.mark.slow
def test_seed_sweep_reruns_only_the_sampler_and_what_follows_and_loads_once(capsys, models_dir, tmp_path, fresh_manager):
    loads = fresh_manager.loads
    code, report, out, err = nuance_run(capsys, models_dir, tmp_path / "out", "txt2img", "--sweep", "3.seed=1,2,3")
    assert code == 0, err
    assert fresh_manager.loads == loads + 1
    runs = report["runs"]
    assert [r["params"]["3.seed"] for r in runs] == [1, 2, 3]
    assert all(r["status"] == "succeeded" for r in runs)
    assert set(node_statuses(runs[0]).values()) == {"executed"}
    for run in runs[1:]:
        statuses = node_statuses(run)
        assert {n for n, s in statuses.items() if s == "executed"} == SAMPLER_AND_AFTER
        assert {n for n, s in statuses.items() if s == "cached"} == {"4", "5", "6", "7"}
    files = [r["outputs"][0] for r in runs]
    assert len(set(files)) == 3
    first, second, third = (pixels(p) for p in files)
    assert np.abs(first - second).mean() > 2 and np.abs(second - third).mean() > 2
    assert out.count("saved ") == 3


# -- model variants -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_inpainting_checkpoint_runs_txt2img(capsys, models_dir, tmp_path):
    code, report, _, err = nuance_run(capsys, models_dir, tmp_path / "out", "txt2img", "--set", "3.seed=1", ckpt=INPAINT)
    assert code == 0, err
    [run] = report["runs"]
    assert run["status"] == "succeeded", run["nodes"]
    check_saved_png(run["outputs"][0], ckpt=INPAINT, seed=1)


# -- errors -----------------------------------------------------------------------------------------
def test_missing_checkpoint_is_bad_input(capsys, models_dir, tmp_path):
    report = tmp_path / "report.json"
    code = main(["run", "txt2img", "--models-dir", str(models_dir), "--output-dir", str(tmp_path / "out"),
                 "--report", str(report), "--set", "4.ckpt_name=missing.safetensors"])
    err = capsys.readouterr().err
    assert code == 2
    assert "missing.safetensors" in err and "not one of the choices" in err
    assert SINGLE in err  # the choices that do exist are named
    assert "Traceback" not in err
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["runs"] == [] and "missing.safetensors" in data["error"]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_the_bundled_demo_checkpoint_is_found_whatever_the_models_folder(capsys, models_dir):
    """resources/models is always searched (last), so the workflows' default model is always there."""
    code = main(["models", "--json", "--no-hash", "--kind", "checkpoints", "--models-dir", str(models_dir)])
    listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)["models"]}
    assert code == 0
    assert listed["nuance-demo.safetensors"]["arch"] == "sd1"
    assert "tiny.safetensors" in listed


def _broken_models(tmp_path: Path, models_dir: Path) -> Path:
    """A models folder holding a copy of the tiny checkpoint, a truncated copy and a .ckpt file."""
    root = tmp_path / "models"
    (root / "checkpoints").mkdir(parents=True)
    shutil.copy(models_dir / "checkpoints" / SINGLE, root / "checkpoints" / SINGLE)
    data = (models_dir / "checkpoints" / SINGLE).read_bytes()
    (root / "checkpoints" / "broken.safetensors").write_bytes(data[: len(data) // 2])
    (root / "checkpoints" / "old.ckpt").write_bytes(b"PK\x03\x04 not opened: pickle files are refused")
    return root


@pytest.mark.parametrize(("ckpt", "fragments"), [
    ("old.ckpt", ["old.ckpt", "pickle", "safetensors"]),
    ("broken.safetensors", ["broken.safetensors", "truncated"]),
])
def test_unusable_checkpoint_fails_the_run_naming_the_file(capsys, models_dir, tmp_path, ckpt, fragments):
    code, report, _, err = nuance_run(capsys, _broken_models(tmp_path, models_dir), tmp_path / "out", "txt2img", ckpt=ckpt)
    assert code == 1
    [run] = report["runs"]
    assert run["status"] == "failed"
    loader = run["nodes"]["4"]
    assert loader["status"] == "failed"
    for fragment in fragments:
        assert fragment in loader["error"]
        assert fragment in err
    statuses = node_statuses(run)
    assert all(statuses[n] == "skipped" for n in ("3", "6", "7", "8", "9"))
    assert run["outputs"] == []


def test_models_list_json(capsys, models_dir, tmp_path):
    root = _broken_models(tmp_path, models_dir)
    shutil.copytree(models_dir / "checkpoints" / DIFFUSERS, root / "checkpoints" / DIFFUSERS)
    code = main(["models", "--json", "--models-dir", str(root)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    listing = json.loads(captured.out)
    assert listing["source"] == "--models-dir"
    entries = {e["name"]: e for e in listing["models"] if Path(e["path"]).is_relative_to(root)}
    assert set(entries) == {SINGLE, "broken.safetensors", "old.ckpt", DIFFUSERS}

    tiny = entries[SINGLE]
    assert tiny["kind"] == "checkpoints" and tiny["detected"] == "checkpoint" and tiny["arch"] == "sd1"
    digest = hashlib.sha256((root / "checkpoints" / SINGLE).read_bytes()).hexdigest()
    assert len(tiny["hash"]) == 10 and tiny["hash"].lower() == digest[:10]
    assert tiny["size"] == (root / "checkpoints" / SINGLE).stat().st_size

    broken = entries["broken.safetensors"]
    assert broken["detected"] == "broken" and "truncated" in broken["error"]
    assert entries["old.ckpt"]["detected"] == "pickle"
    assert entries[DIFFUSERS]["detected"] == "diffusers" and entries[DIFFUSERS]["arch"] == "sd1"
