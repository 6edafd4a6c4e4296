"""Sampling overhead on a real-size SD 1.5 model with random weights.

Prints one JSON object with three figures, each against a baseline measured in the same run:

- ``step_ratio``: KSampler's time per step over the raw UNet forward call it makes (the same
  batched cond+uncond call, same shapes). Target ≤ 1.05.
- ``pipeline_ratio``: a whole txt2img run of our graph (text encoding, sampling, VAE decode,
  PNG save) over diffusers' ``StableDiffusionPipeline`` on the same modules, steps and size.
  Target ≤ 1.03.
- ``cold_load_s``: loading the single-file checkpoint through CheckpointLoaderSimple, from a file
  written by this script (fp16, 2 GB), with the disk cache warm.

A small latent keeps it affordable on a CPU while model compute, not Python, dominates, as it
does for users. On a CPU expect several minutes.

    python bench/sampling.py [--size 256] [--steps 4] [--repeat 3]
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

from studio.core.graph import Graph
from studio.core.resources import resource_path
from studio.engine import Executor, RunOptions
from studio.plugins import create_registry


def reference_config(name: str) -> dict[str, Any]:
    data = json.loads(resource_path("model_configs", "reference", "sd15", name).read_text(encoding="utf-8"))
    return {k: v for k, v in data.items() if not k.startswith("_")}


def write_random_sd15(path: Path) -> None:
    """A full-size SD 1.5 single-file checkpoint with random weights, in the original layout."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from studio.models.convert import to_single_file

    torch.manual_seed(0)
    unet = UNet2DConditionModel(**reference_config("unet.json"))
    vae = AutoencoderKL(**reference_config("vae.json"))
    text = CLIPTextModel(CLIPTextConfig(**reference_config("text_encoder.json")))
    state = to_single_file(unet.state_dict(), vae.state_dict(), [text.state_dict()], "sd1")
    from safetensors.torch import save_file

    save_file({k: v.half().contiguous() for k, v in state.items()}, str(path))


def txt2img_graph(size: int, steps: int, seed: int) -> Graph:
    g = Graph()
    g.add_node("CheckpointLoaderSimple", {"ckpt_name": "bench.safetensors"}, id="4")
    g.add_node("CLIPTextEncode", {"text": "a red circle on a blue background"}, id="6")
    g.add_node("CLIPTextEncode", {"text": "blurry"}, id="7")
    g.add_node("EmptyLatentImage", {"width": size, "height": size, "batch_size": 1}, id="5")
    g.add_node("KSampler", {"seed": seed, "steps": steps, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal",
                            "denoise": 1.0}, id="3")
    g.add_node("VAEDecode", id="8")
    g.add_node("SaveImage", {"filename_prefix": "bench"}, id="9")
    for src, slot, dst, name in [("4", 0, "3", "model"), ("4", 1, "6", "clip"), ("4", 1, "7", "clip"),
                                 ("6", 0, "3", "positive"), ("7", 0, "3", "negative"), ("5", 0, "3", "latent_image"),
                                 ("3", 0, "8", "samples"), ("4", 2, "8", "vae"), ("8", 0, "9", "images")]:
        g.connect(src, slot, dst, name)
    return g


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="picture size in pixels (latent is size/8)")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3, help="measurements per figure (median reported)")
    args = parser.parse_args()

    from studio.models.folders import configure
    from studio.models.memory import model_manager

    work = Path(tempfile.mkdtemp(prefix="nuance-bench-"))
    (work / "checkpoints").mkdir()
    ckpt = work / "checkpoints" / "bench.safetensors"
    write_random_sd15(ckpt)
    configure(work)
    registry = create_registry()
    executor = Executor(registry, options=RunOptions(output_dir=work / "out", models_dir=work))

    # Cold load through the node (the file was just written, so the disk cache is warm).
    graph = txt2img_graph(args.size, args.steps, 0)
    start = time.perf_counter()
    loaded = executor.run(graph, ["4"])
    cold_load_s = time.perf_counter() - start
    model, clip, vae = loaded.outputs["4"]

    # 1. KSampler step time against the raw UNet calls it makes.
    from studio.models.ksampler import SamplingRequest, run_sampler

    cond, _ = clip.encode("a red circle on a blue background", "cpu")
    uncond, _ = clip.encode("blurry", "cpu")
    latent = {"samples": torch.zeros(1, 4, args.size // 8, args.size // 8)}
    unet = model.unet
    x = torch.randn(2, 4, args.size // 8, args.size // 8)
    context = torch.cat([cond, uncond])
    t = torch.tensor([500.0, 500.0])
    raw, sampled = [], []
    with torch.inference_mode():
        unet(x, t, encoder_hidden_states=context)  # warm-up of both paths: first calls pay one-time costs
        run_sampler(model, SamplingRequest(seed=0, steps=1, cfg=7.0, sampler_name="euler", scheduler="normal",
                                           positive=[(cond, {})], negative=[(uncond, {})], latent=latent), "cpu")
        for i in range(args.repeat):
            start = time.perf_counter()
            for _ in range(args.steps):
                unet(x, t, encoder_hidden_states=context)
            raw.append((time.perf_counter() - start) / args.steps)
            request = SamplingRequest(seed=i, steps=args.steps, cfg=7.0, sampler_name="euler", scheduler="normal",
                                      positive=[(cond, {})], negative=[(uncond, {})], latent=latent)
            start = time.perf_counter()
            run_sampler(model, request, "cpu")
            sampled.append((time.perf_counter() - start) / args.steps)

    # 2. The whole txt2img graph against diffusers' pipeline on the same modules.
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

    pipe = StableDiffusionPipeline(
        vae=vae.vae, text_encoder=clip.encoders[0].model, tokenizer=clip.encoders[0].tokenizer, unet=unet,
        scheduler=EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear"),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    ours, theirs = [], []
    for i in range(args.repeat):
        graph = txt2img_graph(args.size, args.steps, 1000 + i)
        graph.set_input("6", "text", f"a red circle on a blue background {i}")  # no cached encodings
        start = time.perf_counter()
        result = executor.run(graph)
        ours.append(time.perf_counter() - start)
        assert result.ok, result.failures
        start = time.perf_counter()
        pipe(f"a red circle on a blue background {i}", negative_prompt="blurry", height=args.size, width=args.size,
             num_inference_steps=args.steps, guidance_scale=7.0, generator=torch.Generator().manual_seed(i))
        theirs.append(time.perf_counter() - start)

    step_ms, raw_ms = statistics.median(sampled) * 1000, statistics.median(raw) * 1000
    ours_ms, theirs_ms = statistics.median(ours) * 1000, statistics.median(theirs) * 1000
    figures = {
        "device": "cpu",
        "torch_threads": torch.get_num_threads(),
        "size": args.size,
        "steps": args.steps,
        "repeat": args.repeat,
        "unet_forward_ms": round(raw_ms, 1),
        "ksampler_step_ms": round(step_ms, 1),
        "step_ratio": round(step_ms / raw_ms, 3),
        "txt2img_ms": round(ours_ms, 1),
        "diffusers_pipeline_ms": round(theirs_ms, 1),
        "pipeline_ratio": round(ours_ms / theirs_ms, 3),
        "cold_load_s": round(cold_load_s, 2),
        "checkpoint_bytes": ckpt.stat().st_size,
        "targets": {"step_ratio": 1.05, "pipeline_ratio": 1.03},
    }
    figures["meets_targets"] = figures["step_ratio"] <= 1.05 and figures["pipeline_ratio"] <= 1.03
    model_manager().free_memory()
    for path in sorted(work.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    work.rmdir()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
