"""Train the demo model in three resumable stages, then export one SD 1.x single-file checkpoint.

    python -m training.demo.train vae        [--steps 3000] [--run training/runs/demo]
    python -m training.demo.train diffusion  [--steps 6000] [--run training/runs/demo]
    python -m training.demo.train export     [--out resources/models/checkpoints/nuance-demo.safetensors]

Every stage is seeded: batch ``i`` is drawn from its own ``Random(seed, i)``, so a stage stopped
and resumed (``--steps`` is the total to reach) sees exactly the data it would have seen. State
(weights, optimizer, step) is saved as safetensors + JSON every ``--save-every`` steps; no pickle.
The components are the SD 1.x classes (AutoencoderKL, CLIPTextModel, UNet2DConditionModel), so
the export loads through the same loader as any community checkpoint.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from training.demo import toyworld

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RUN = ROOT / "training" / "runs" / "demo"
DEFAULT_OUT = ROOT / "resources" / "models" / "checkpoints" / "nuance-demo.safetensors"
SD_SCALE = 0.18215  # SD 1.x's latent scaling: the exported VAE is rescaled to match it

VAE_CONFIG: dict[str, Any] = {
    "in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 1, "norm_num_groups": 16,
    "block_out_channels": [16, 32, 64, 64], "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4, "sample_size": toyworld.SIZE, "scaling_factor": SD_SCALE,
}
TEXT_CONFIG: dict[str, Any] = {
    "vocab_size": 49408, "hidden_size": 64, "intermediate_size": 256, "num_hidden_layers": 3,
    "num_attention_heads": 1, "max_position_embeddings": 77, "hidden_act": "quick_gelu", "projection_dim": 64,
    "layer_norm_eps": 1e-5, "bos_token_id": 49406, "eos_token_id": 49407, "pad_token_id": 49407,
}
UNET_CONFIG: dict[str, Any] = {
    "sample_size": toyworld.SIZE // 8, "in_channels": 4, "out_channels": 4, "layers_per_block": 1,
    "block_out_channels": [64, 128, 128], "norm_num_groups": 32, "cross_attention_dim": 64,
    "attention_head_dim": 8,  # SD 1's rule: 8 heads
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}


# -- state on disk (safetensors + JSON, never pickle) ---------------------------------------------
def save_state(folder: Path, step: int, models: dict[str, torch.nn.Module], optimizer: torch.optim.Optimizer,
               extra: dict[str, Any] | None = None) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"{name}.{k}": v.detach().contiguous() for name, m in models.items() for k, v in m.state_dict().items()}
    opt = optimizer.state_dict()
    for index, state in opt["state"].items():
        for key, value in state.items():
            tensors[f"optimizer.{index}.{key}"] = torch.as_tensor(value).contiguous()
    tmp = folder / "state.safetensors.tmp"
    save_file(tensors, str(tmp))
    tmp.replace(folder / "state.safetensors")
    meta = {"step": step, "param_groups": opt["param_groups"], **(extra or {})}
    (folder / "state.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")


def load_state(folder: Path, models: dict[str, torch.nn.Module], optimizer: torch.optim.Optimizer | None) -> int:
    """Restore a saved stage; returns the step it reached (0 when there is nothing to resume)."""
    if not (folder / "state.json").is_file():
        return 0
    from safetensors.torch import load_file

    tensors = load_file(str(folder / "state.safetensors"))
    meta = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    for name, model in models.items():
        prefix = f"{name}."
        model.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
    if optimizer is not None:
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("optimizer."):
                _, index, name = key.split(".", 2)
                state.setdefault(int(index), {})[name] = value
        optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return int(meta["step"])


# -- models --------------------------------------------------------------------------------------
def new_vae() -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL.from_config(VAE_CONFIG)


def new_text_encoder() -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(CLIPTextConfig(**TEXT_CONFIG))


def new_unet() -> Any:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel.from_config(UNET_CONFIG)


def pictures(seed: int, step: int, count: int) -> tuple[torch.Tensor, list[str]]:
    """Batch ``step`` of a stage: ``[N, 3, H, W]`` in -1..1 and captions, the same on every run."""
    rng = random.Random(seed * 1_000_003 + step)
    images, captions, _ = toyworld.batch(rng, count)
    return torch.from_numpy(images).permute(0, 3, 1, 2) * 2 - 1, captions


def _lr(step: int, total: int, base: float, warmup: int = 200) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    return base * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


# -- stage 1: the VAE ----------------------------------------------------------------------------
def train_vae(run: Path, steps: int, batch_size: int, seed: int, save_every: int, lr: float) -> None:
    torch.manual_seed(seed)
    vae = new_vae()
    optimizer = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    folder = run / "vae"
    start = load_state(folder, {"vae": vae}, optimizer)
    vae.train()
    bar = tqdm(range(start, steps), initial=start, total=steps, desc="vae", unit="step")
    began = time.time()
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = _lr(step, steps, lr)
        x, _ = pictures(seed, step, batch_size)
        posterior = vae.encode(x).latent_dist
        z = posterior.sample(generator=torch.Generator().manual_seed(seed + step))
        recon = vae.decode(z).sample
        rec_loss = F.l1_loss(recon, x) + F.mse_loss(recon, x)
        kl = posterior.kl().mean() / z[0].numel()
        loss = rec_loss + 1e-4 * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        bar.set_postfix(rec=f"{rec_loss.item():.4f}", kl=f"{kl.item():.3f}")
        if (step + 1) % save_every == 0 or step + 1 == steps:
            save_state(folder, step + 1, {"vae": vae}, optimizer, {"seconds": time.time() - began})


# -- stage 2: text encoder + UNet ----------------------------------------------------------------
def _trained_vae(run: Path) -> Any:
    vae = new_vae()
    if load_state(run / "vae", {"vae": vae}, None) == 0:
        raise SystemExit(f"train the VAE first: no state in {run / 'vae'}")
    return vae.eval().requires_grad_(False)


def latent_scale_correction(vae: Any, seed: int, count: int = 512) -> float:
    """How much to scale the VAE's latents so that SD 1's 0.18215 makes them unit-variance."""
    x, _ = pictures(seed + 99, 0, count)
    with torch.no_grad():
        std = vae.encode(x).latent_dist.mean.std().item()
    return (1 / SD_SCALE) / std


def rescale_vae(vae: Any, k: float) -> None:
    """Scale the latent space by ``k`` exactly: the encoder's mean by k (its log-variance by k²),
    the decoder's input by 1/k. Pictures in and out are unchanged."""
    with torch.no_grad():
        channels = vae.config.latent_channels
        vae.quant_conv.weight[:channels] *= k
        vae.quant_conv.bias[:channels] *= k
        vae.quant_conv.bias[channels:] += 2 * math.log(k)
        vae.post_quant_conv.weight *= 1 / k


def latent_pool(run: Path, vae: Any, seed: int, scale: float, count: int) -> tuple[torch.Tensor, list[str]]:
    """``count`` toy pictures encoded once (the VAE is frozen in this stage), cached in the run folder."""
    from safetensors.torch import load_file, save_file

    path, captions_path = run / "diffusion" / "pool.safetensors", run / "diffusion" / "pool.json"
    if path.is_file() and captions_path.is_file():
        meta = json.loads(captions_path.read_text(encoding="utf-8"))
        if meta.get("count") == count and meta.get("seed") == seed:
            return load_file(str(path))["latents"], meta["captions"]
    latents, captions = [], []
    for chunk in tqdm(range(0, count, 256), desc="encoding pictures", unit="batch"):
        x, caps = pictures(seed + 7, chunk, min(256, count - chunk))
        with torch.no_grad():
            latents.append(vae.encode(x).latent_dist.mean * scale)
        captions.extend(caps)
    pool = torch.cat(latents)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"latents": pool.contiguous()}, str(path))
    captions_path.write_text(json.dumps({"count": count, "seed": seed, "captions": captions}), encoding="utf-8")
    return pool, captions


def tokenize(tokenizer: Any, captions: list[str]) -> torch.Tensor:
    return tokenizer(captions, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids


def train_diffusion(run: Path, steps: int, batch_size: int, seed: int, save_every: int, lr: float,
                    uncond_rate: float = 0.1, pool_size: int = 16384) -> None:
    from studio.models.sampling import sd_alphas_cumprod
    from studio.models.text import load_bundled_tokenizer

    torch.manual_seed(seed)
    vae = _trained_vae(run)
    scale = SD_SCALE * latent_scale_correction(vae, seed)
    text_encoder, unet = new_text_encoder(), new_unet()
    params = list(text_encoder.parameters()) + list(unet.parameters())
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    folder = run / "diffusion"
    start = load_state(folder, {"text_encoder": text_encoder, "unet": unet}, optimizer)
    tokenizer = load_bundled_tokenizer(True)
    pool, pool_captions = latent_pool(run, vae, seed, scale, pool_size)
    alphas = sd_alphas_cumprod().float()
    text_encoder.train()
    unet.train()
    bar = tqdm(range(start, steps), initial=start, total=steps, desc="diffusion", unit="step")
    began = time.time()
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = _lr(step, steps, lr)
        generator = torch.Generator().manual_seed(seed * 7919 + step)
        index = torch.randint(0, len(pool), (batch_size,), generator=generator)
        latents = pool[index]
        captions = ["" if random.Random(seed + step * 31 + i).random() < uncond_rate else pool_captions[j]
                    for i, j in enumerate(index.tolist())]
        noise = torch.randn(latents.shape, generator=generator)
        t = torch.randint(0, 1000, (latents.shape[0],), generator=generator)
        a = alphas[t].view(-1, 1, 1, 1)
        noisy = a.sqrt() * latents + (1 - a).sqrt() * noise
        context = text_encoder(tokenize(tokenizer, captions)).last_hidden_state
        prediction = unet(noisy, t, encoder_hidden_states=context).sample
        loss = F.mse_loss(prediction, noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if (step + 1) % save_every == 0 or step + 1 == steps:
            save_state(folder, step + 1, {"text_encoder": text_encoder, "unet": unet}, optimizer,
                       {"seconds": time.time() - began, "latent_scale": scale})


# -- export --------------------------------------------------------------------------------------
def export(run: Path, out: Path, seed: int) -> Path:
    """One SD 1.x single-file checkpoint in fp16, with the VAE rescaled to SD 1's latent scale."""
    from safetensors.torch import save_file

    from studio.models.convert import to_single_file

    vae = _trained_vae(run)
    rescale_vae(vae, latent_scale_correction(vae, seed))
    text_encoder, unet = new_text_encoder(), new_unet()
    if load_state(run / "diffusion", {"text_encoder": text_encoder, "unet": unet}, None) == 0:
        raise SystemExit(f"train the diffusion stage first: no state in {run / 'diffusion'}")
    state = to_single_file(unet.state_dict(), vae.state_dict(), [text_encoder.state_dict()], "sd1")
    out.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"format": "pt", "nuance.default_size": str(toyworld.SIZE), "nuance.prediction": "epsilon",
                "modelspec.title": "Nuance demo (toy world)", "modelspec.architecture": "stable-diffusion-v1"}
    save_file({k: v.half().contiguous() if v.is_floating_point() else v.contiguous() for k, v in state.items()},
              str(out), metadata=metadata)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the Nuance Studio demo model.")
    parser.add_argument("stage", choices=["vae", "diffusion", "export"])
    parser.add_argument("--run", type=Path, default=DEFAULT_RUN, help="folder for resumable training state")
    parser.add_argument("--steps", type=int, help="total steps to reach (resumes where the saved state stopped)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--save-every", type=int, default=250)
    parser.add_argument("--pool-size", type=int, default=16384, help="pictures encoded once for the diffusion stage")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    np.random.seed(args.seed)
    if args.stage == "vae":
        train_vae(args.run, args.steps or 1500, args.batch_size, args.seed, args.save_every, args.lr or 1e-3)
    elif args.stage == "diffusion":
        train_diffusion(args.run, args.steps or 6000, args.batch_size, args.seed, args.save_every, args.lr or 5e-4,
                        pool_size=args.pool_size)
    else:
        print(export(args.run, args.out, args.seed))


if __name__ == "__main__":
    main()
