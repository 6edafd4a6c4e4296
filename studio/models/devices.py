"""Choosing the compute device. torch is imported only when a device must really be known,
so graphs that never touch a model (and the CPU choice) start fast."""

from __future__ import annotations

from studio.core.errors import NuanceError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


class DeviceError(NuanceError):
    """The requested device does not exist on this machine."""


def check_device_name(name: str) -> str:
    """Normalise a user's device name (``auto``, ``cpu``, ``cuda``, ``cuda:1``, ``mps``)."""
    lowered = name.strip().lower()
    if lowered in DEVICE_CHOICES or (lowered.startswith("cuda:") and lowered[5:].isdigit()):
        return lowered
    raise DeviceError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)} (or cuda:N)")


def resolve_device(name: str = "auto") -> str:
    """The torch device string to use: ``auto`` picks CUDA, then MPS, then the CPU."""
    name = check_device_name(name)
    if name == "cpu":
        return "cpu"
    import torch

    cuda_ok = torch.cuda.is_available()
    mps_ok = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if name == "auto":
        return "cuda" if cuda_ok else "mps" if mps_ok else "cpu"
    if name.startswith("cuda"):
        if not cuda_ok:
            why = "this PyTorch is a CPU-only build" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise DeviceError(f"device {name!r} was requested but {why}; use --device cpu or auto")
        index = int(name[5:]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise DeviceError(f"device {name!r} was requested but only {torch.cuda.device_count()} CUDA device(s) exist")
        return name
    if not mps_ok:
        raise DeviceError("device 'mps' was requested but Apple's Metal backend is not available here; use --device cpu or auto")
    return "mps"


def unet_dtype(device: str) -> object:
    """Half precision where it is fast and safe (CUDA, MPS), full precision on the CPU."""
    import torch

    kind = device.split(":")[0]
    return torch.float16 if kind in ("cuda", "mps") else torch.float32


def vae_dtype(device: str) -> object:
    """The VAE decodes to black or noisy pictures in fp16 on some models: bf16 where the GPU has
    it, otherwise fp32 (the VAE is small, so this costs little)."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32
