"""What a LoRA strength change and a ControlNet cost, each against a baseline from the same run.

Prints one JSON object:

- ``lora``: the bundled ``lora.json`` workflow (demo pack). ``cold_s`` is a first run in a fresh
  executor with no model loaded; ``strength_change_s`` the median re-run after changing the
  LoRA's strengths (the checkpoint stays loaded, the LoRA file is not read again, the prompts
  hit the encoding cache); ``seed_change_s`` the median re-run after changing only the seed (the
  floor: sampling, decoding, saving). ``rerun_over_cold`` and ``strength_over_seed`` are ratios.
- ``controlnet``: per sampling step, the demo model with the demo edge ControlNet against the
  plain step (``step_ratio``), through the sampler users run (``run_sampler``).
- ``controlnet_real_size`` (with ``--real-size``): the same ratio for a real-size SD 1.5 UNet and
  ControlNet with random weights at 256 px, where model compute dominates as it does for users.

    python bench/lora_controlnet.py [--repeat 5] [--steps 20] [--real-size]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from studio.core.workflow import load_workflow
from studio.engine import Executor, RunOptions
from studio.plugins import create_registry

WORKFLOWS = Path(__file__).resolve().parents[1] / "resources" / "workflows"


def _executor(name: str) -> tuple[Executor, Any]:
    registry = create_registry()
    workflow = load_workflow(WORKFLOWS / name, registry)
    out = Path(tempfile.mkdtemp(prefix="nuance-bench-"))
    return Executor(registry, options=RunOptions(output_dir=out, base_dir=workflow.base_dir, workflow=workflow)), workflow


def _timed(executor: Executor, graph: Any) -> float:
    start = time.perf_counter()
    result = executor.run(graph)
    elapsed = time.perf_counter() - start
    assert result.ok, result.failures
    return elapsed


def bench_lora(repeat: int, steps: int) -> dict[str, Any]:
    from studio.models.memory import model_manager
    from studio.models.text import clear_encoding_cache

    model_manager().free_memory()
    clear_encoding_cache()
    executor, workflow = _executor("lora.json")
    graph = workflow.graph
    graph.set_input("3", "steps", steps)
    cold = _timed(executor, graph)
    loads = model_manager().loads
    strength, seed = [], []
    for i in range(repeat):
        value = 0.5 + 0.1 * (i % 5)
        graph.set_input("10", "strength_model", value)
        graph.set_input("10", "strength_clip", value)
        strength.append(_timed(executor, graph))
        graph.set_input("3", "seed", 1000 + i)
        seed.append(_timed(executor, graph))
    assert model_manager().loads == loads, "a strength change loaded a file again"
    s, z = statistics.median(strength), statistics.median(seed)
    return {"steps": steps, "cold_s": round(cold, 4), "strength_change_s": round(s, 4), "seed_change_s": round(z, 4),
            "rerun_over_cold": round(s / cold, 3), "strength_over_seed": round(s / z, 3)}


def _per_step(model: Any, positive: list[Any], negative: list[Any], latent: dict[str, Any], steps: int,
              repeat: int) -> float:
    from studio.models.ksampler import SamplingRequest, run_sampler

    times = []
    for i in range(repeat + 1):
        request = SamplingRequest(seed=i, steps=steps, cfg=5.0, sampler_name="euler", scheduler="normal",
                                  positive=positive, negative=negative, latent=latent)
        start = time.perf_counter()
        run_sampler(model, request, "cpu" if not torch.cuda.is_available() else "cuda", preview=False)
        if i:  # the first call warms up
            times.append((time.perf_counter() - start) / steps)
    return statistics.median(times)


def bench_controlnet(repeat: int, steps: int) -> dict[str, Any]:
    executor, workflow = _executor("controlnet_canny.json")
    outputs = executor.run(workflow.graph, ["4", "5", "13", "6", "7"]).outputs
    model = outputs["4"][0]
    latent = outputs["5"][0]
    plain = _per_step(model, outputs["6"][0], outputs["7"][0], latent, steps, repeat)
    controlled = _per_step(model, outputs["13"][0], outputs["13"][1], latent, steps, repeat)
    return {"steps": steps, "plain_step_ms": round(plain * 1000, 3), "controlnet_step_ms": round(controlled * 1000, 3),
            "step_ratio": round(controlled / plain, 3)}


def bench_real_size(repeat: int, steps: int, size: int) -> dict[str, Any]:
    """Real SD 1.5 sizes with random weights, built in memory (no file): only the compute matters."""
    from diffusers import ControlNetModel, UNet2DConditionModel
    from sampling import reference_config  # bench/sampling.py, beside this script

    from studio.models.controlnet import ControlNetHandle, ControlStep
    from studio.models.handles import ModelHandle, model_sigmas_from

    torch.manual_seed(0)
    unet = UNet2DConditionModel(**reference_config("unet.json")).eval().requires_grad_(False)
    controlnet = ControlNetModel.from_unet(unet).eval().requires_grad_(False)
    model = ModelHandle(unet, "sd1", "epsilon", model_sigmas_from({}), name="random SD 1.5")
    positive, negative = torch.randn(1, 77, 768), torch.randn(1, 77, 768)
    control = ControlStep(ControlNetHandle(controlnet, "sd1", "random SD 1.5 ControlNet"), torch.rand(1, 3, size, size), 1.0)
    latent = {"samples": torch.zeros(1, 4, size // 8, size // 8)}
    plain = _per_step(model, [(positive, {})], [(negative, {})], latent, steps, repeat)
    controlled = _per_step(model, [(positive, {"control": control})], [(negative, {"control": control})], latent, steps,
                           repeat)
    return {"size": size, "steps": steps, "plain_step_ms": round(plain * 1000, 1),
            "controlnet_step_ms": round(controlled * 1000, 1), "step_ratio": round(controlled / plain, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--real-size", action="store_true", help="also measure a real-size SD 1.5 ControlNet (minutes)")
    parser.add_argument("--size", type=int, default=256, help="picture size for --real-size")
    args = parser.parse_args()
    result: dict[str, Any] = {"lora": bench_lora(args.repeat, args.steps),
                              "controlnet": bench_controlnet(args.repeat, args.steps)}
    if args.real_size:
        result["controlnet_real_size"] = bench_real_size(max(1, args.repeat // 2), 4, args.size)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
