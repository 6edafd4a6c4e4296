"""txt2img time of the default workflow (the bundled demo model) on this machine.

Prints one JSON object: the median wall time of ``nuance run txt2img`` in-process (model already
loaded, as in the editor), and as baseline diffusers' ``StableDiffusionPipeline`` on the same
modules, steps and size, measured in the same run (``ratio`` = ours / theirs).

    python bench/demo.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from studio.core.workflow import load_workflow
from studio.engine import Executor, RunOptions
from studio.plugins import create_registry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    registry = create_registry()
    workflow = load_workflow(Path(__file__).resolve().parents[1] / "resources" / "workflows" / "txt2img.json", registry)
    graph = workflow.graph
    out = Path(tempfile.mkdtemp(prefix="nuance-demo-bench-"))
    executor = Executor(registry, options=RunOptions(output_dir=out, base_dir=workflow.base_dir, workflow=workflow))
    start = time.perf_counter()
    first = executor.run(graph)
    cold_s = time.perf_counter() - start
    assert first.ok, first.failures
    model, clip, vae = first.outputs.get("4") or executor.run(graph, ["4"]).outputs["4"]

    steps = graph.nodes["3"].inputs["steps"]
    size = graph.nodes["5"].inputs["width"]
    prompt = graph.nodes["6"].inputs["text"]
    ours = []
    for seed in range(args.repeat):
        graph.set_input("3", "seed", 100 + seed)
        start = time.perf_counter()
        result = executor.run(graph)
        ours.append(time.perf_counter() - start)
        assert result.ok

    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

    pipe = StableDiffusionPipeline(
        vae=vae.vae, text_encoder=clip.encoders[0].model, tokenizer=clip.encoders[0].tokenizer, unet=model.unet,
        scheduler=EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear"),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    theirs = []
    for seed in range(args.repeat):
        start = time.perf_counter()
        pipe(prompt, negative_prompt=graph.nodes["7"].inputs["text"], height=size, width=size, num_inference_steps=steps,
             guidance_scale=graph.nodes["3"].inputs["cfg"], generator=torch.Generator().manual_seed(seed))
        theirs.append(time.perf_counter() - start)

    ours_ms, theirs_ms = statistics.median(ours) * 1000, statistics.median(theirs) * 1000
    print(json.dumps({
        "device": "cpu", "torch_threads": torch.get_num_threads(), "size": size, "steps": steps, "repeat": args.repeat,
        "first_run_with_load_ms": round(cold_s * 1000, 1), "txt2img_ms": round(ours_ms, 1),
        "diffusers_pipeline_ms": round(theirs_ms, 1), "ratio": round(ours_ms / theirs_ms, 3),
    }))


if __name__ == "__main__":
    main()
