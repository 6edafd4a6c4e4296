"""LoRA files: read the layouts community files come in, map them onto our modules, patch weights.

Layouts read (one file may mix them):

* kohya / AUTOMATIC1111: ``lora_unet_<module>`` and ``lora_te_<module>`` (SDXL: ``lora_te1_`` /
  ``lora_te2_``) with ``.lora_down.weight``, ``.lora_up.weight`` and ``.alpha``; the module name
  is the diffusers / transformers path with dots as underscores, or the original (LDM) UNet path
  (``input_blocks_4_1_…``), which SDXL trainers write.
* LyCORIS: LoCon (kohya keys on convolutions, optionally with a ``.lora_mid`` Tucker core), LoHa
  (``hada_w1_a`` …) and LoKr (``lokr_w1`` …); full differences (``.diff``).
* diffusers / PEFT: ``unet.<path>.lora_A.weight`` / ``lora_B.weight`` (also under
  ``base_model.model.``), ``text_encoder.`` / ``text_encoder_2.``, the older ``.lora.down`` /
  ``.lora_linear_layer.down`` and attention-processor names (``attn1.processor.to_q_lora.down``).

A LoRA never changes the loaded model for anyone else: handles carry a list of (LoRA, strength)
and :func:`sync_patches` brings a module's weights to exactly that list just before it runs,
restoring the saved originals first. So switching strengths costs a few matrix products, strength
0 is the untouched model bit for bit, and the checkpoint is loaded once.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from studio.models.files import ModelFileError

log = logging.getLogger("nuance.lora")

UNET = "unet"
#: Component names: the UNet and the text encoders in the checkpoint's order (SDXL: CLIP-L, then bigG).
TEXT = ("te0", "te1")
ARCH_NAMES = {"sd1": "SD 1.x", "sd2": "SD 2.x", "sdxl": "SDXL"}
#: Cross-attention context width → architecture (what a LoRA's attn2 to_k / to_v layers take in).
CONTEXT_ARCH = {768: "sd1", 1024: "sd2", 2048: "sdxl"}


class LoraError(ModelFileError):
    """A LoRA file that cannot be used with this model (wrong architecture, unknown layout)."""


# ---------------------------------------------------------------------------- one layer's update


@dataclass
class Adapter:
    """The weight update of one layer, in whichever factorisation the file stores it."""

    kind: str  # "lora" | "loha" | "lokr" | "diff"
    tensors: dict[str, torch.Tensor]
    alpha: float | None = None
    source: str = ""  # the key prefix in the file, for messages

    def rank(self) -> int:
        t = self.tensors
        if self.kind == "lora":
            return int(t["down"].shape[0])
        if self.kind == "loha":
            return int(t["w1_b"].shape[0])
        if self.kind == "lokr" and "w1_b" in t:
            return int(t["w1_b"].shape[0])
        if self.kind == "lokr" and "w2_b" in t:
            return int(t["w2_b"].shape[0])
        return 0

    def scale(self) -> float:
        rank = self.rank()
        return 1.0 if self.alpha is None or rank == 0 else self.alpha / rank

    def input_width(self) -> int | None:
        """What the update's input side says about the layer's input width (for architecture hints)."""
        if self.kind == "lora":
            return int(self.tensors["down"].shape[1])
        return None

    def delta(self, shape: torch.Size | Sequence[int], device: torch.device | str = "cpu") -> torch.Tensor:
        """The full-size float32 update ``ΔW`` for a weight of ``shape`` (before the strength)."""
        t = {k: v.to(device=device, dtype=torch.float32) for k, v in self.tensors.items()}
        if self.kind == "diff":
            out = t["diff"]
        elif self.kind == "lora":
            up, down = t["up"], t["down"]
            if "mid" in t:  # LoCon's Tucker core: down is 1×1, the spatial kernel lives in mid
                mid = t["mid"]
                down = torch.einsum("ijkl,jr->irkl", mid, down.flatten(1))
            out = up.flatten(1) @ down.flatten(1)
        elif self.kind == "loha":
            out = _factor(t, "w1", "t1") * _factor(t, "w2", "t2")
        elif self.kind == "lokr":
            w1 = t["w1"] if "w1" in t else t["w1_a"] @ t["w1_b"]
            w2 = _factor(t, "w2", "t2") if "w2" not in t else t["w2"]
            if w2.dim() == 4:
                w1 = w1[:, :, None, None]
            out = torch.kron(w1, w2)
        else:
            raise LoraError(f"{self.source}: unknown update kind {self.kind!r}")
        if out.numel() != _numel(shape):
            raise LoraError(f"{self.source}: the update has {tuple(out.shape)} values for a weight of shape {tuple(shape)}")
        return out.reshape(shape) * self.scale()


def _factor(t: Mapping[str, torch.Tensor], name: str, tucker: str) -> torch.Tensor:
    """One LoHa / LoKr factor ``a @ b``, through the Tucker core where the file has one."""
    a, b = t[f"{name}_a"], t[f"{name}_b"]
    if tucker in t:
        return torch.einsum("ijkl,jr,ip->prkl", t[tucker], b.flatten(1), a.flatten(1))
    return (a.flatten(1) @ b.flatten(1)).reshape(a.shape[0], *b.shape[1:])


def _numel(shape: Iterable[int]) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


# ---------------------------------------------------------------------------- reading a file

#: (suffix in the file, adapter kind, tensor role). Longest suffixes first.
_SUFFIXES: list[tuple[str, str, str]] = [
    (".lora_down.weight", "lora", "down"), (".lora_up.weight", "lora", "up"), (".lora_mid.weight", "lora", "mid"),
    (".lora_A.default.weight", "lora", "down"), (".lora_B.default.weight", "lora", "up"),
    (".lora_A.weight", "lora", "down"), (".lora_B.weight", "lora", "up"),
    (".lora_linear_layer.down.weight", "lora", "down"), (".lora_linear_layer.up.weight", "lora", "up"),
    (".lora.down.weight", "lora", "down"), (".lora.up.weight", "lora", "up"),
    ("_lora.down.weight", "lora", "down"), ("_lora.up.weight", "lora", "up"),  # attention processors
    (".hada_w1_a", "loha", "w1_a"), (".hada_w1_b", "loha", "w1_b"), (".hada_w2_a", "loha", "w2_a"),
    (".hada_w2_b", "loha", "w2_b"), (".hada_t1", "loha", "t1"), (".hada_t2", "loha", "t2"),
    (".lokr_w1_a", "lokr", "w1_a"), (".lokr_w1_b", "lokr", "w1_b"), (".lokr_w2_a", "lokr", "w2_a"),
    (".lokr_w2_b", "lokr", "w2_b"), (".lokr_w1", "lokr", "w1"), (".lokr_w2", "lokr", "w2"), (".lokr_t2", "lokr", "t2"),
    (".diff", "diff", "diff"),
]
#: Keys a LoRA file may carry that are not weights of a layer (bias updates and training leftovers).
_IGNORED = (".diff_b", ".bias", ".dora_scale", ".on_input", ".scale")
#: The older diffusers attention-processor names: ``attn1.processor.to_q_lora`` → ``attn1.to_q``.
_PROCESSOR = re.compile(r"\.processor\.(to_q|to_k|to_v|to_out)$")


@dataclass
class LoraFile:
    """A LoRA file's layer updates, grouped by the key prefix that names their layer."""

    name: str
    adapters: dict[str, Adapter]
    identity: tuple[Any, ...] = ()
    ignored: list[str] = field(default_factory=list)

    def cache_nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for a in self.adapters.values() for t in a.tensors.values())

    def arch_hint(self) -> str | None:
        """The architecture the file was trained for, where its keys or shapes tell."""
        if any(k.startswith(("lora_te1_", "lora_te2_", "text_encoder_2.")) for k in self.adapters):
            return "sdxl"
        for key, adapter in self.adapters.items():
            if re.search(r"attn2[._]to_[kv]$", key) and (width := adapter.input_width()) in CONTEXT_ARCH:
                return CONTEXT_ARCH[width]
        return None


def parse_lora(state: Mapping[str, torch.Tensor], name: str = "LoRA", identity: tuple[Any, ...] = ()) -> LoraFile:
    """Group a LoRA state dict's tensors into one :class:`Adapter` per layer."""
    groups: dict[str, tuple[str, dict[str, torch.Tensor]]] = {}
    alphas: dict[str, float] = {}
    ignored: list[str] = []
    for key, tensor in state.items():
        if key.endswith(".alpha"):
            alphas[key[: -len(".alpha")]] = float(tensor.float().item())
            continue
        for suffix, kind, role in _SUFFIXES:
            if key.endswith(suffix):
                base = key[: -len(suffix)]
                if m := _PROCESSOR.search(base):
                    base = base[: m.start()] + "." + m.group(1) + (".0" if m.group(1) == "to_out" else "")
                found_kind, tensors = groups.setdefault(base, (kind, {}))
                if found_kind != kind:
                    raise LoraError(f"{name}: layer {base} mixes {found_kind} and {kind} tensors")
                tensors[role] = tensor
                break
        else:
            ignored.append(key)
    if not groups:
        unknown = [k for k in ignored if not k.endswith(_IGNORED)]
        sample = ", ".join(unknown[:3]) or "none"
        raise LoraError(f"{name}: no LoRA weights found (keys such as {sample}); is this a LoRA file?")
    adapters: dict[str, Adapter] = {}
    for base, (kind, tensors) in groups.items():
        needed = {"lora": {"up", "down"}, "loha": {"w1_a", "w1_b", "w2_a", "w2_b"}, "diff": {"diff"}}.get(kind, set())
        if kind == "lokr":
            have = tensors.keys()
            ok = ("w1" in have or {"w1_a", "w1_b"} <= have) and ("w2" in have or {"w2_a", "w2_b"} <= have)
        else:
            ok = needed <= tensors.keys()
        if not ok:
            raise LoraError(f"{name}: layer {base} is incomplete (has {', '.join(sorted(tensors))})")
        adapters[base] = Adapter(kind, tensors, alphas.get(base), source=f"{name}: {base}")
    return LoraFile(name, adapters, identity, [k for k in ignored if not k.endswith(_IGNORED)])


def read_lora(path: str | Path, identity: tuple[Any, ...] = ()) -> LoraFile:
    """Read a LoRA file (safetensors; pickle only where allowed, as for every model file)."""
    from studio.models.files import load_state_dict

    path = Path(path)
    return parse_lora(load_state_dict(path, device="cpu"), path.name, identity)


# ---------------------------------------------------------------------------- mapping onto a model


@dataclass
class ModelLayers:
    """The patchable layers of a loaded model: per component, module path → weight shape, with
    lookups from the names LoRA files use (dotted, underscored, original-layout)."""

    arch: str
    components: dict[str, torch.nn.Module]
    _lookup: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for component, module in self.components.items():
            table: dict[str, str] = {}
            for path, sub in module.named_modules():
                if isinstance(sub, torch.nn.Linear | torch.nn.Conv2d):
                    table[path] = path
                    table[path.replace(".", "_")] = path
            if component == UNET:
                from studio.models.convert import unet_to_original

                weights = [k for k, _ in module.named_parameters() if k.endswith(".weight")]
                try:  # original name → diffusers name (the converter only renames keys)
                    original = unet_to_original({k: k[: -len(".weight")] for k in weights})
                except Exception:  # a UNet shape the table does not know: diffusers names only
                    original = {}
                for orig, path in original.items():
                    orig = orig[: -len(".weight")]
                    if path in table:
                        table.setdefault(orig, path)
                        table.setdefault(orig.replace(".", "_"), path)
            self._lookup[component] = table

    def resolve(self, key: str) -> tuple[str, str | None]:
        """``(component, module path)`` for a LoRA key prefix; the path is None when the
        component has no such layer (or the component is not loaded here)."""
        for prefix in ("base_model.model.", "lora_unet."):
            if key.startswith(prefix):
                key = ("unet." if prefix == "lora_unet." else "") + key[len(prefix):]
        candidates: list[tuple[str, str]] = []  # one, for now: the component the prefix names
        if key.startswith("lora_unet_"):
            candidates.append((UNET, key[len("lora_unet_"):]))
        elif key.startswith(("lora_te_", "lora_te1_")):
            candidates.append((TEXT[0], key.split("_", 2)[2]))
        elif key.startswith("lora_te2_"):
            candidates.append((TEXT[1], key[len("lora_te2_"):]))
        elif key.startswith(("unet.", "model.diffusion_model.", "diffusion_model.")):
            candidates.append((UNET, key.split("diffusion_model.", 1)[-1] if "diffusion_model." in key else key[5:]))
        elif key.startswith("text_encoder_2."):
            candidates.append((TEXT[1], key[len("text_encoder_2."):]))
        elif key.startswith("text_encoder."):
            candidates.append((TEXT[0], key[len("text_encoder."):]))
        else:  # a bare diffusers path (some PEFT exports of a UNet-only LoRA)
            candidates.append((UNET, key))
        component, name = candidates[0]
        table = self._lookup.get(component, {})
        variants = [name]
        if component != UNET:  # files name CLIP layers text_model.encoder…; newer transformers drop text_model
            variants += [name[len(p):] for p in ("text_model.", "text_model_") if name.startswith(p)]
            variants += [f"text_model.{name}"]
        for variant in variants:
            for form in (variant, variant.replace(".", "_")):
                if form in table:
                    return component, table[form]
        return component, None

    def weight(self, component: str, path: str) -> torch.nn.Parameter:
        return self.components[component].get_submodule(path).weight


@dataclass(eq=False)
class BoundLora:
    """A LoRA file mapped onto one model: per component, module path → adapter."""

    lora: LoraFile
    targets: dict[str, dict[str, Adapter]]

    @property
    def key(self) -> tuple[Any, ...]:
        return (self.lora.identity or (id(self.lora),))

    def count(self, component_prefix: str) -> int:
        return sum(len(v) for k, v in self.targets.items() if k.startswith(component_prefix))


def bind(lora: LoraFile, layers: ModelLayers) -> BoundLora:
    """Map a LoRA onto a model, refusing one made for another architecture with a clear message."""
    targets: dict[str, dict[str, Adapter]] = {}
    unmatched: list[str] = []
    mismatched: list[str] = []
    elsewhere = 0  # layers of a component not given (the text encoders, for LoraLoaderModelOnly)
    for key, adapter in lora.adapters.items():
        component, path = layers.resolve(key)
        if component not in layers.components:
            elsewhere += 1
            continue
        if path is None:
            unmatched.append(key)
            continue
        shape = layers.weight(component, path).shape
        if not _fits(adapter, shape):
            mismatched.append(f"{key} {_update_shape(adapter)} vs {tuple(shape)}")
            continue
        targets.setdefault(component, {})[path] = adapter
    total = len(lora.adapters) - elsewhere
    matched = sum(len(v) for v in targets.values())
    hint = lora.arch_hint()
    model_name = ARCH_NAMES.get(layers.arch, layers.arch)
    if total == 0:
        return BoundLora(lora, {})  # e.g. a text-encoder-only LoRA through LoraLoaderModelOnly: nothing to do
    if mismatched or matched == 0 or (hint is not None and hint != layers.arch):
        if hint is not None and hint != layers.arch:
            raise LoraError(f"{lora.name} is a LoRA for {ARCH_NAMES.get(hint, hint)}, but the model is {model_name}; "
                            f"a LoRA only works with the architecture it was trained for")
        if mismatched:
            raise LoraError(f"{lora.name} does not fit this {model_name} model: {len(mismatched)} of its {total} layers have "
                            f"other sizes (e.g. {mismatched[0]}); it was made for another architecture")
        raise LoraError(f"{lora.name}: none of its {total} layers is in this {model_name} model "
                        f"(keys such as {', '.join(unmatched[:2])}); it was made for another kind of model")
    if unmatched:
        log.warning("%s: %d of %d layers are not in this model and were skipped (e.g. %s)", lora.name, len(unmatched),
                    total, ", ".join(unmatched[:3]))
    return BoundLora(lora, targets)


def _fits(adapter: Adapter, shape: torch.Size) -> bool:
    t = adapter.tensors
    if adapter.kind == "lora":
        up, down = t["up"], t["down"]
        kernel = tuple(t["mid"].shape[2:]) if "mid" in t else tuple(down.shape[2:])
        if len(shape) == 4 and kernel and kernel != tuple(shape[2:]):
            return False
        return up.shape[0] == shape[0] and down.shape[1] == (shape[1] if len(shape) > 1 else 1)
    if adapter.kind == "diff":
        return t["diff"].numel() == _numel(shape)
    try:
        return adapter.delta(shape).numel() == _numel(shape)
    except (LoraError, RuntimeError):
        return False


def _update_shape(adapter: Adapter) -> str:
    t = adapter.tensors
    if adapter.kind == "lora":
        return f"({t['up'].shape[0]}×{t['down'].shape[1]})"
    return "(" + ", ".join(f"{k} {tuple(v.shape)}" for k, v in t.items()) + ")"


# ---------------------------------------------------------------------------- patching weights

#: What a handle asks for on one module: ((LoRA key, strength, module path → adapter), ...).
Patches = tuple[tuple[tuple[Any, ...], float, Mapping[str, Adapter]], ...]


@dataclass
class _PatchState:
    signature: tuple[Any, ...]
    originals: dict[str, torch.Tensor]


_STATE_ATTR = "_nuance_lora_state"


def patch_signature(patches: Patches) -> tuple[Any, ...]:
    """What identifies the weights a list of patches gives (zero strengths change nothing)."""
    return tuple((key, float(strength)) for key, strength, adapters in patches if strength != 0 and adapters)


def sync_patches(module: torch.nn.Module, patches: Patches) -> None:
    """Bring ``module``'s weights to the base weights plus exactly ``patches``.

    The originals of every touched weight are kept (on the CPU) the first time it is patched and
    copied back before another set is applied, so no rounding accumulates and an empty list is
    the base model bit for bit.
    """
    signature = patch_signature(patches)
    state: _PatchState | None = getattr(module, _STATE_ATTR, None)
    if (state.signature if state else ()) == signature:
        return
    with torch.no_grad():
        if state is not None:
            for path, original in state.originals.items():
                weight = module.get_submodule(path).weight
                weight.copy_(original.to(device=weight.device, dtype=weight.dtype))
            object.__setattr__(module, _STATE_ATTR, None)
        if not signature:
            return
        originals: dict[str, torch.Tensor] = {}
        for _key, strength, adapters in patches:
            if strength == 0:
                continue
            for path, adapter in adapters.items():
                weight = module.get_submodule(path).weight
                if path not in originals:
                    originals[path] = weight.detach().to("cpu", copy=True)
                delta = adapter.delta(weight.shape, device=weight.device)
                weight.copy_((weight.float() + float(strength) * delta).to(weight.dtype))
        object.__setattr__(module, _STATE_ATTR, _PatchState(signature, originals))


def unpatch(module: torch.nn.Module) -> None:
    """Restore a module's original weights (before a dtype change, or to hand it back clean)."""
    sync_patches(module, ())


def patches_for(stack: Sequence[tuple[BoundLora, float]], component: str) -> Patches:
    """The part of a handle's LoRA stack that touches ``component``."""
    return tuple((bound.key, strength, bound.targets.get(component, {})) for bound, strength in stack
                 if bound.targets.get(component))
