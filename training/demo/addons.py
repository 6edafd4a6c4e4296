"""Train the demo pack's add-ons on top of the shipped demo checkpoint, then export them.

    python -m training.demo.addons lora        [--steps 2000]   # "pattern" style LoRA (LoCon)
    python -m training.demo.addons controlnet  [--steps 3000]   # ControlNet on Canny edge maps
    python -m training.demo.addons export

Both start from ``resources/models/checkpoints/nuance-demo.safetensors`` loaded through the same
loader users have, so they fit the checkpoint as shipped (fp16 weights included). The LoRA is saved
in the kohya / AUTOMATIC1111 layout (``lora_unet_*`` with ``lora_down`` / ``lora_up`` / ``alpha``,
3×3 convolutions as LyCORIS LoCon); the ControlNet in the diffusers layout as one file. Those are
the layouts community files come in, so the demo pack goes through the same code as theirs.
Resumable and seeded like ``training.demo.train``; state is safetensors + JSON, never pickle.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from studio.preprocess import canny
from training.demo import toyworld
from training.demo.train import DEFAULT_OUT, DEFAULT_RUN, ROOT, _lr, load_state, save_state, tokenize

LORA_OUT = ROOT / "resources" / "models" / "loras" / "nuance-demo-pattern.safetensors"
CONTROLNET_OUT = ROOT / "resources" / "models" / "controlnet" / "nuance-demo-canny.safetensors"
LORA_RANK, LORA_ALPHA = 8, 4.0
#: Canny thresholds of the training hints; the example workflow uses the same.
CANNY_LOW, CANNY_HIGH = 0.1, 0.2
CONTROLNET_EMBEDDING = (16, 32, 64, 64)  # three stride-2 steps: picture → latent size


# -- the base model ------------------------------------------------------------------------------
def base_model(checkpoint: Path = DEFAULT_OUT) -> Any:
    from studio.models.loader import load_checkpoint

    ckpt = load_checkpoint(checkpoint, dtype=torch.float32)
    for module in (ckpt.unet, ckpt.vae, *ckpt.text_encoders):
        module.eval().requires_grad_(False)
    return ckpt


class Contexts:
    """Text-encoder outputs per caption, computed once (the text encoder stays frozen here)."""

    def __init__(self, ckpt: Any):
        self.encoder, self.tokenizer = ckpt.text_encoders[0], ckpt.tokenizers[0]
        self.cache: dict[str, torch.Tensor] = {}

    def __call__(self, captions: list[str]) -> torch.Tensor:
        missing = sorted({c for c in captions if c not in self.cache})
        if missing:
            with torch.no_grad():
                hidden = self.encoder(tokenize(self.tokenizer, missing)).last_hidden_state
            self.cache.update(zip(missing, hidden))
        return torch.stack([self.cache[c] for c in captions])


def encode_pool(ckpt: Any, seed: int, count: int, style: str, hints: bool) -> tuple[torch.Tensor, torch.Tensor | None, list[str]]:
    """``count`` toy pictures as model-space latents (and their Canny hints), captions."""
    latents, edge_maps, captions = [], [], []
    for chunk in tqdm(range(0, count, 256), desc=f"encoding {style} pictures", unit="batch"):
        rng = random.Random(seed * 1_000_003 + chunk)
        pictures, caps, _ = toyworld.batch(rng, min(256, count - chunk), style=style)
        x = torch.from_numpy(pictures).permute(0, 3, 1, 2) * 2 - 1
        with torch.no_grad():
            latents.append(ckpt.vae.encode(x).latent_dist.mean * ckpt.vae_scaling_factor)
        if hints:
            edges = np.stack([canny(p, CANNY_LOW, CANNY_HIGH) for p in pictures])
            edge_maps.append(torch.from_numpy(edges)[:, None].expand(-1, 3, -1, -1).contiguous())
        captions.extend(caps)
    return torch.cat(latents), torch.cat(edge_maps) if hints else None, captions


def noised(latents: torch.Tensor, generator: torch.Generator,
           layout_bias: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Latents noised at random timesteps. ``layout_bias`` draws more of the noisy timesteps,
    where a picture's layout is decided: that is where an edge map has most to say."""
    from studio.models.sampling import sd_alphas_cumprod

    alphas = sd_alphas_cumprod().float()
    noise = torch.randn(latents.shape, generator=generator)
    if layout_bias:
        t = (torch.rand(latents.shape[0], generator=generator).sqrt() * 1000).long().clamp(max=999)
    else:
        t = torch.randint(0, 1000, (latents.shape[0],), generator=generator)
    a = alphas[t].view(-1, 1, 1, 1)
    return a.sqrt() * latents + (1 - a).sqrt() * noise, noise, t


def drop_captions(captions: list[str], rate: float, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["" if rng.random() < rate else c for c in captions]


# -- the LoRA ------------------------------------------------------------------------------------
class LoraAdapters(torch.nn.Module):
    """Low-rank adapters on every linear layer and convolution of the UNet's attention and ResNet
    blocks, added to their outputs by forward hooks; the base weights stay untouched."""

    def __init__(self, unet: torch.nn.Module, rank: int = LORA_RANK, alpha: float = LORA_ALPHA):
        super().__init__()
        self.rank, self.alpha = rank, alpha
        self.down = torch.nn.ModuleDict()
        self.up = torch.nn.ModuleDict()
        self.names: dict[str, str] = {}
        self.hooks = []
        for name, module in unet.named_modules():
            if not _adaptable(name, module):
                continue
            key = name.replace(".", "_")
            if isinstance(module, torch.nn.Linear):
                down = torch.nn.Linear(module.in_features, rank, bias=False)
                up = torch.nn.Linear(rank, module.out_features, bias=False)
            else:
                down = torch.nn.Conv2d(module.in_channels, rank, module.kernel_size, module.stride, module.padding, bias=False)
                up = torch.nn.Conv2d(rank, module.out_channels, 1, bias=False)
            torch.nn.init.kaiming_uniform_(down.weight, a=5**0.5)
            torch.nn.init.zeros_(up.weight)
            self.down[key], self.up[key] = down, up
            self.names[key] = name
            self.hooks.append(module.register_forward_hook(self._hook(key)))

    def _hook(self, key: str) -> Any:
        scale = self.alpha / self.rank

        def add(_module: torch.nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
            return output + self.up[key](self.down[key](args[0])) * scale

        return add

    def kohya_state(self) -> dict[str, torch.Tensor]:
        state: dict[str, torch.Tensor] = {}
        for key in self.down:
            prefix = f"lora_unet_{key}"
            state[f"{prefix}.lora_down.weight"] = self.down[key].weight.detach().clone()
            state[f"{prefix}.lora_up.weight"] = self.up[key].weight.detach().clone()
            state[f"{prefix}.alpha"] = torch.tensor(self.alpha)
        return state


def _adaptable(name: str, module: torch.nn.Module) -> bool:
    if "attentions" in name:
        return isinstance(module, torch.nn.Linear | torch.nn.Conv2d)
    return "resnets" in name and isinstance(module, torch.nn.Conv2d) and name.endswith(("conv1", "conv2"))


def train_lora(run: Path, steps: int, batch_size: int, seed: int, save_every: int, lr: float, pool_size: int) -> None:
    torch.manual_seed(seed)
    ckpt = base_model()
    adapters = LoraAdapters(ckpt.unet)
    pool, _, captions = encode_pool(ckpt, seed + 11, pool_size, "pattern", hints=False)
    contexts = Contexts(ckpt)

    def loss(step: int, generator: torch.Generator) -> torch.Tensor:
        index = torch.randint(0, len(pool), (batch_size,), generator=generator)
        noisy, noise, t = noised(pool[index], generator)
        context = contexts(drop_captions([captions[i] for i in index.tolist()], 0.1, seed + step))
        return F.mse_loss(ckpt.unet(noisy, t, encoder_hidden_states=context).sample, noise)

    train_steps(run / "lora", "lora", adapters, loss, steps=steps, seed=seed, save_every=save_every, lr=lr)


def train_steps(folder: Path, name: str, model: torch.nn.Module, loss_fn: Any, *, steps: int, seed: int,
                save_every: int, lr: float, clip: float | None = None) -> None:
    """The resumable loop both add-ons share: AdamW on ``model``'s parameters with warm-up and a
    cosine decay, ``loss_fn(step, generator)`` per step, state saved every ``save_every`` steps."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    start = load_state(folder, {name: model}, optimizer)
    bar = tqdm(range(start, steps), initial=start, total=steps, desc=name, unit="step")
    began = time.time()
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = _lr(step, steps, lr, warmup=100)
        loss = loss_fn(step, torch.Generator().manual_seed(seed * 7919 + step))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if (step + 1) % save_every == 0 or step + 1 == steps:
            save_state(folder, step + 1, {name: model}, optimizer, {"seconds": time.time() - began})


# -- the ControlNet ------------------------------------------------------------------------------
def new_controlnet(unet: Any) -> Any:
    from diffusers import ControlNetModel

    return ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=CONTROLNET_EMBEDDING)


def train_controlnet(run: Path, steps: int, batch_size: int, seed: int, save_every: int, lr: float, pool_size: int) -> None:
    torch.manual_seed(seed)
    ckpt = base_model()
    controlnet = new_controlnet(ckpt.unet).train()
    pool, hints, captions = encode_pool(ckpt, seed + 13, pool_size, "flat", hints=True)
    assert hints is not None
    contexts = Contexts(ckpt)

    def loss(step: int, generator: torch.Generator) -> torch.Tensor:
        index = torch.randint(0, len(pool), (batch_size,), generator=generator)
        noisy, noise, t = noised(pool[index], generator, layout_bias=True)
        # Many captions dropped: the edges alone must be enough to place the shape.
        context = contexts(drop_captions([captions[i] for i in index.tolist()], 0.3, seed + step))
        down, mid = controlnet(noisy, t, encoder_hidden_states=context, controlnet_cond=hints[index], return_dict=False)
        prediction = ckpt.unet(noisy, t, encoder_hidden_states=context, down_block_additional_residuals=down,
                               mid_block_additional_residual=mid).sample
        return F.mse_loss(prediction, noise)

    train_steps(run / "controlnet", "controlnet", controlnet, loss, steps=steps, seed=seed, save_every=save_every,
                lr=lr, clip=1.0)


# -- export --------------------------------------------------------------------------------------
def export(run: Path, lora_out: Path = LORA_OUT, controlnet_out: Path = CONTROLNET_OUT) -> list[Path]:
    from safetensors.torch import save_file

    ckpt = base_model()
    written = []
    adapters = LoraAdapters(ckpt.unet)
    if load_state(run / "lora", {"lora": adapters}, None):
        lora_out.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.half().contiguous() for k, v in adapters.kohya_state().items()}, str(lora_out), metadata={
            "ss_network_module": "lycoris.kohya", "ss_network_dim": str(LORA_RANK), "ss_network_alpha": str(LORA_ALPHA),
            "modelspec.title": "Nuance demo: pattern style", "modelspec.architecture": "stable-diffusion-v1/lora"})
        written.append(lora_out)
    for hook in adapters.hooks:
        hook.remove()
    controlnet = new_controlnet(ckpt.unet)
    if load_state(run / "controlnet", {"controlnet": controlnet}, None):
        controlnet_out.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.half().contiguous() for k, v in controlnet.state_dict().items()}, str(controlnet_out),
                  metadata={"modelspec.title": "Nuance demo: Canny edges",
                            "modelspec.architecture": "stable-diffusion-v1/controlnet"})
        written.append(controlnet_out)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the demo model's LoRA and ControlNet.")
    parser.add_argument("stage", choices=["lora", "controlnet", "export"])
    parser.add_argument("--run", type=Path, default=DEFAULT_RUN)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--save-every", type=int, default=250)
    parser.add_argument("--pool-size", type=int, default=8192)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--lora-out", type=Path, default=LORA_OUT)
    parser.add_argument("--controlnet-out", type=Path, default=CONTROLNET_OUT)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.stage == "lora":
        train_lora(args.run, args.steps or 2000, args.batch_size, args.seed, args.save_every, args.lr or 1e-3, args.pool_size)
    elif args.stage == "controlnet":
        train_controlnet(args.run, args.steps or 3000, args.batch_size, args.seed, args.save_every, args.lr or 1e-3,
                         args.pool_size)
    else:
        for path in export(args.run, args.lora_out, args.controlnet_out):
            print(path)


if __name__ == "__main__":
    main()
