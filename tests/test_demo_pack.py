"""The demo pack's LoRA and ControlNet do what they promise, through the bundled workflows.

Bars, each stated here, on 8 seeds (one batch of 8) per prompt:

- LoRA ("pattern": the shape repeated small on a 2×2 grid): the style statistic is the number of
  separate shapes in a picture (``toyworld.count_shapes``); at strength 1 its mean over the
  samples is at least 2× the mean without the LoRA, and the share of Canny edge pixels
  (``toyworld.edge_fraction``) rises by at least 1.5× too; at strength 0 every picture is
  identical, pixel for pixel, to ``txt2img.json``'s.
- ControlNet (Canny edges): the edge map of a square (``inputs/canny_square.png``) makes the
  model draw a shape whose foreground mask has IoU ≥ 0.5 with that square in ≥ 75% of samples,
  and more often than the same prompt and seeds without the ControlNet.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from studio.cli import main
from studio.core.resources import resource_path
from training.demo import toyworld

pytestmark = pytest.mark.slow

SEEDS = 8
PACK = [resource_path("models", "checkpoints", "nuance-demo.safetensors"),
        resource_path("models", "loras", "nuance-demo-pattern.safetensors"),
        resource_path("models", "controlnet", "nuance-demo-canny.safetensors")]
SHAPES_RATIO_BAR, EDGE_RATIO_BAR = 2.0, 1.5
IOU_BAR, IOU_SHARE_BAR = 0.5, 0.75
SQUARE = toyworld.Scene("square", "white", "black", (22.0, 40.0), 14.0)  # as drawn into inputs/canny_square.png


def pictures(tmp_path, workflow: str, seed: int, *sets: str) -> list[np.ndarray]:
    out, report = tmp_path / "out", tmp_path / "report.json"
    argv = ["run", workflow, "--quiet", "--output-dir", str(out), "--report", str(report),
            "--set", f"3.seed={seed}", "--set", f"5.batch_size={SEEDS}"]
    for item in sets:
        argv += ["--set", item]
    code = main(argv)
    data = json.loads(report.read_text())
    assert code == 0, data
    return [np.asarray(Image.open(p).convert("RGB"), dtype=np.float32) / 255 for p in data["runs"][0]["outputs"]]


def test_the_pack_is_bundled_within_30_mb_and_listed():
    from studio.models.folders import model_folders

    assert all(p.is_file() for p in PACK)
    assert sum(p.stat().st_size for p in PACK) <= 30 * 1024 * 1024
    folders = model_folders()
    assert "nuance-demo-pattern.safetensors" in folders.list("loras")
    assert "nuance-demo-canny.safetensors" in folders.list("controlnet")


@pytest.mark.parametrize(("text", "seed"), [("a red circle on a blue background", 0),
                                            ("a yellow triangle on a purple background", 100)])
def test_the_pattern_lora_repeats_the_shape_and_strength_zero_changes_nothing(tmp_path, text, seed):
    prompt = f"6.text={text}"
    plain = pictures(tmp_path / "plain", "txt2img", seed, prompt)
    styled = pictures(tmp_path / "lora", "lora", seed, prompt)
    zero = pictures(tmp_path / "zero", "lora", seed, prompt, "10.strength_model=0", "10.strength_clip=0")
    assert all(np.array_equal(a, b) for a, b in zip(zero, plain))
    before = np.mean([toyworld.count_shapes(p) for p in plain])
    after = np.mean([toyworld.count_shapes(p) for p in styled])
    assert after >= SHAPES_RATIO_BAR * before, (before, after)
    edges_before = np.mean([toyworld.edge_fraction(p) for p in plain])
    edges_after = np.mean([toyworld.edge_fraction(p) for p in styled])
    assert edges_after >= EDGE_RATIO_BAR * edges_before, (edges_before, edges_after)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def test_the_canny_controlnet_puts_the_shape_on_the_edges(tmp_path):
    square = toyworld.shape_mask(SQUARE)
    guided = pictures(tmp_path / "cn", "controlnet_canny", 7)
    free = pictures(tmp_path / "free", "controlnet_canny", 7, "13.strength=0")
    hits = [iou(toyworld.foreground_mask(p), square) for p in guided]
    misses = [iou(toyworld.foreground_mask(p), square) for p in free]
    share = np.mean([h >= IOU_BAR for h in hits])
    assert share >= IOU_SHARE_BAR, hits
    assert share > np.mean([m >= IOU_BAR for m in misses]), (hits, misses)
