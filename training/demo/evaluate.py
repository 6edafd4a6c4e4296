"""Figures for the model card: how often the demo model draws what the prompt says.

    python -m training.demo.evaluate [--checkpoint resources/models/checkpoints/nuance-demo.safetensors]

Runs the bundled txt2img workflow (the same path users take) for every colour pair and shape
with several seeds and reads each picture back with the toy world's classifier.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from studio.core.workflow import load_workflow
from studio.engine import Executor, RunOptions
from studio.plugins import create_registry
from training.demo import toyworld
from training.demo.train import DEFAULT_OUT


def evaluate(checkpoint: Path, prompts: int, seeds: int, steps: int, cfg: float, sampler: str) -> dict[str, object]:
    from studio.models.folders import configured

    registry = create_registry()
    root = Path(__file__).resolve().parents[2]
    workflow = load_workflow(root / "resources" / "workflows" / "txt2img.json", registry)
    graph = workflow.graph
    out = Path(tempfile.mkdtemp(prefix="nuance-eval-"))
    models = out / "models"
    (models / "checkpoints").mkdir(parents=True)
    (models / "checkpoints" / "eval.safetensors").symlink_to(checkpoint.resolve())
    rng = random.Random(0)
    combos = [(c, s, b) for c, b in itertools.permutations(toyworld.COLORS, 2) for s in toyworld.SHAPES]
    chosen = rng.sample(combos, prompts)
    hits = {"color": 0, "background": 0, "shape": 0}
    total = 0
    with configured(models):
        executor = Executor(registry, options=RunOptions(output_dir=out / "pictures", models_dir=models))
        graph.set_input("4", "ckpt_name", "eval.safetensors")
        for key, value in (("steps", steps), ("cfg", cfg), ("sampler_name", sampler)):
            graph.set_input("3", key, value)
        graph.set_input("5", "batch_size", seeds)
        for index, (color, shape, background) in enumerate(chosen):
            graph.set_input("6", "text", f"a {color} {shape} on a {background} background")
            graph.set_input("3", "seed", 10_000 + index * seeds)
            result = executor.run(graph)
            for path in result.files:
                reading = toyworld.classify(np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255)
                hits["color"] += reading.color == color
                hits["background"] += reading.background == background
                hits["shape"] += reading.shape == shape
                total += 1
    return {"samples": total, "prompts": prompts, "seeds_per_prompt": seeds, "steps": steps, "cfg": cfg,
            "sampler": sampler, **{f"{k}_accuracy": round(v / total, 3) for k, v in hits.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--prompts", type=int, default=24)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--cfg", type=float, default=5.0)
    parser.add_argument("--sampler", default="euler")
    args = parser.parse_args()
    print(json.dumps(evaluate(args.checkpoint, args.prompts, args.seeds, args.steps, args.cfg, args.sampler)))


if __name__ == "__main__":
    main()
