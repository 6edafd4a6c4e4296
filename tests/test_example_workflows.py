"""Every bundled example workflow runs from ``nuance run``: on the demo pack (as shipped), and on
tiny random models in the community file layouts (a single-file checkpoint, a kohya LoRA, an
original-layout ControlNet) through ``--models-dir`` and ``--set``, as a user would point them
at their own files. What each promises on the demo pack is tested in test_demo_model.py,
test_demo_pack.py and test_inpaint_nodes.py; here: it runs, and the pictures have the right size.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tiny_models
from PIL import Image

from studio.cli import main
from studio.core.resources import resource_path

pytestmark = pytest.mark.slow

WORKFLOWS = sorted(p.stem for p in resource_path("workflows").glob("*.json") if p.stem != "hello")
#: Picture size each workflow makes on the 64-pixel demo pack (outpaint adds 32 pixels on the right).
SIZES = {"outpaint": (96, 64)}
#: How each workflow's own model names are pointed at the tiny community-layout files.
COMMUNITY = {"lora": ["10.lora_name=tiny_kohya.safetensors"],
             "controlnet_canny": ["12.control_net_name=tiny_original.safetensors"]}


def run(tmp_path: Path, workflow: str, *argv: str) -> list[Path]:
    report = tmp_path / "report.json"
    code = main(["run", workflow, "--quiet", "--output-dir", str(tmp_path / "out"), "--report", str(report), *argv])
    data = json.loads(report.read_text())
    assert code == 0, data
    return [Path(p) for p in data["runs"][0]["outputs"]]


def test_every_example_workflow_is_listed_here():
    assert set(WORKFLOWS) >= {"txt2img", "img2img", "inpaint", "inpaint_masked_area", "outpaint", "lora", "controlnet_canny"}


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_runs_on_the_demo_pack(tmp_path, workflow):
    outputs = run(tmp_path, workflow, "--set", "3.steps=6")
    assert outputs
    with Image.open(outputs[0]) as picture:
        assert picture.size == SIZES.get(workflow, (64, 64))


@pytest.fixture(scope="module")
def community_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("community_models")
    tiny_models.write_tiny_single_file(root / "checkpoints" / "tiny.safetensors", seed=0)
    tiny_models.write_tiny_lora(root / "loras" / "tiny_kohya.safetensors", layout="kohya")
    tiny_models.write_tiny_controlnet(root / "controlnet" / "tiny_original.safetensors", layout="original")
    return root


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_runs_on_community_layout_files(tmp_path, community_models, workflow):
    sets = ["4.ckpt_name=tiny.safetensors", "3.steps=2", *COMMUNITY.get(workflow, [])]
    argv = ["--models-dir", str(community_models)]
    for item in sets:
        argv += ["--set", item]
    outputs = run(tmp_path, workflow, *argv)
    with Image.open(outputs[0]) as picture:
        assert picture.size == SIZES.get(workflow, (64, 64))
