"""Turning prompts into conditioning (ComfyUI's node and input names)."""

from __future__ import annotations

from typing import Any

from studio.api import Float, Input, Int, Node, Output, RunContext, String

MAX_RESOLUTION = 16384


class CLIPTextEncode(Node):
    NAME = "CLIPTextEncode"
    DISPLAY_NAME = "CLIP Text Encode (Prompt)"
    CATEGORY = "conditioning"
    DESCRIPTION = ("Encode a prompt. (word:1.2) and (word) strengthen, [word] weakens, \\( \\) are literal brackets, "
                   "embedding:name uses a textual inversion from the embeddings folder, BREAK starts a new "
                   "75-token chunk; longer prompts are encoded in chunks.")
    INPUTS = [String("text", "", multiline=True), Input("clip", "CLIP")]
    OUTPUTS = [Output("CONDITIONING", "CONDITIONING")]

    @classmethod
    def fingerprint(cls, ctx: RunContext, **inputs: Any) -> Any:
        """Embedding files are outside state: when one changes, the prompt encodes anew."""
        return _embeddings_fingerprint(ctx, inputs["text"])

    def run(self, ctx: RunContext, text: str, clip: Any) -> list[tuple[Any, dict[str, Any]]]:
        cond, pooled = clip.encode(text, ctx.device, _embeddings(ctx, text))
        extras: dict[str, Any] = {}
        if pooled is not None:
            extras["pooled_output"] = pooled
        return [(cond, extras)]


def _embeddings_fingerprint(ctx: RunContext, *texts: str) -> Any:
    if not any("embedding:" in text for text in texts):
        return None
    from studio.models.folders import model_folders
    from studio.models.memory import file_identity

    found = []
    for folder in model_folders(ctx.options.models_dir).search_dirs("embeddings"):
        found.extend(file_identity(p) for p in sorted(folder.rglob("*")) if p.is_file())
    return tuple(found)


def _embeddings(ctx: RunContext, *texts: str) -> Any:
    """The embeddings store, when a prompt names an embedding."""
    if not any("embedding:" in text for text in texts):
        return None
    from studio.models.folders import model_folders
    from studio.models.text import EmbeddingStore

    return EmbeddingStore(model_folders(ctx.options.models_dir).search_dirs("embeddings"))


def _encoder(clip: Any, name: str) -> Any:
    return next((spec for spec in getattr(clip, "encoders", ()) if getattr(spec, "name", None) == name), None)


def _family(clip: Any) -> str:
    return {"sd1": "SD 1.x", "sd2": "SD 2.x"}.get(getattr(clip, "arch", ""), str(getattr(clip, "arch", "unknown")))


def encode_sdxl(clip: Any, text_g: str, text_l: str, device: str, embeddings: Any = None) -> tuple[Any, Any]:
    """SDXL conditioning from two prompts, as ComfyUI's CLIPTextEncodeSDXL: ``text_l`` through CLIP-L,
    ``text_g`` through OpenCLIP-G (which gives the pooled output); the shorter is padded with empty
    77-token chunks, then the features are concatenated (L first, 768 + 1280 = 2048)."""
    import torch

    from studio.models.memory import model_manager
    from studio.models.text import encode_prompt

    spec_l, spec_g = _encoder(clip, "clip_l"), _encoder(clip, "clip_g")
    if spec_l is None or spec_g is None:
        raise ValueError(f"CLIPTextEncodeSDXL needs an SDXL checkpoint's CLIP (CLIP-L and OpenCLIP-G); this CLIP is "
                         f"{_family(clip)}'s: use CLIPTextEncode, or load an SDXL checkpoint")
    for spec in (spec_l, spec_g):
        model_manager().use(spec.model, device)
    with torch.inference_mode():
        cond_l, _ = encode_prompt(text_l, [spec_l], embeddings=embeddings)
        cond_g, pooled = encode_prompt(text_g, [spec_g], embeddings=embeddings)
        if cond_l.shape[1] != cond_g.shape[1]:
            short, spec = (cond_l, spec_l) if cond_l.shape[1] < cond_g.shape[1] else (cond_g, spec_g)
            empty, _ = encode_prompt("", [spec])
            chunks = -(-(max(cond_l.shape[1], cond_g.shape[1]) - short.shape[1]) // empty.shape[1])
            padded = torch.cat([short, *([empty] * chunks)], dim=1)
            cond_l, cond_g = (padded, cond_g) if spec is spec_l else (cond_l, padded)
        length = min(cond_l.shape[1], cond_g.shape[1])
        cond = torch.cat([cond_l[:, :length], cond_g[:, :length]], dim=-1)
    return cond.float().cpu(), None if pooled is None else pooled.float().cpu()


class CLIPTextEncodeSDXL(Node):
    NAME = "CLIPTextEncodeSDXL"
    CATEGORY = "advanced/conditioning"
    DESCRIPTION = ("Encode a prompt for SDXL with a separate text for each of its two text encoders: text_g for "
                   "OpenCLIP-G (the main one; it also gives the pooled output) and text_l for CLIP-L. The sizes are "
                   "SDXL's size conditioning: the original size and crop the picture 'came from' and the target size; "
                   "1024 × 1024 with no crop is the usual choice.")
    INPUTS = [Input("clip", "CLIP"),
              Int("width", 1024, min=0, max=MAX_RESOLUTION, tooltip="Original width SDXL is told the picture had"),
              Int("height", 1024, min=0, max=MAX_RESOLUTION, tooltip="Original height"),
              Int("crop_w", 0, min=0, max=MAX_RESOLUTION, tooltip="Left edge of the crop the picture was taken from"),
              Int("crop_h", 0, min=0, max=MAX_RESOLUTION, tooltip="Top edge of the crop"),
              Int("target_width", 1024, min=0, max=MAX_RESOLUTION),
              Int("target_height", 1024, min=0, max=MAX_RESOLUTION),
              String("text_g", "", multiline=True, tooltip="Prompt for OpenCLIP-G"),
              String("text_l", "", multiline=True, tooltip="Prompt for CLIP-L")]
    OUTPUTS = [Output("CONDITIONING", "CONDITIONING")]

    @classmethod
    def fingerprint(cls, ctx: RunContext, **inputs: Any) -> Any:
        return _embeddings_fingerprint(ctx, inputs["text_g"], inputs["text_l"])

    def run(self, ctx: RunContext, clip: Any, width: int, height: int, crop_w: int, crop_h: int, target_width: int,
            target_height: int, text_g: str, text_l: str) -> list[tuple[Any, dict[str, Any]]]:
        cond, pooled = encode_sdxl(clip, text_g, text_l, ctx.device, _embeddings(ctx, text_g, text_l))
        return [(cond, {"pooled_output": pooled, "width": width, "height": height, "crop_w": crop_w, "crop_h": crop_h,
                        "target_width": target_width, "target_height": target_height})]


class CLIPTextEncodeSDXLRefiner(Node):
    NAME = "CLIPTextEncodeSDXLRefiner"
    CATEGORY = "advanced/conditioning"
    DESCRIPTION = ("Encode a prompt for an SDXL refiner, with its aesthetic score (6 for the positive, about 2.5 for "
                   "the negative is usual) and size. Needs a CLIP with OpenCLIP-G; with an SDXL base CLIP the result "
                   "is the base's conditioning, which the base model reads (ignoring the score), as in ComfyUI. "
                   "Refiner checkpoints themselves are not supported yet.")
    INPUTS = [Float("ascore", 6.0, min=0.0, max=1000.0, step=0.01, tooltip="Aesthetic score the refiner is told"),
              Int("width", 1024, min=0, max=MAX_RESOLUTION),
              Int("height", 1024, min=0, max=MAX_RESOLUTION),
              String("text", "", multiline=True),
              Input("clip", "CLIP")]
    OUTPUTS = [Output("CONDITIONING", "CONDITIONING")]

    @classmethod
    def fingerprint(cls, ctx: RunContext, **inputs: Any) -> Any:
        return _embeddings_fingerprint(ctx, inputs["text"])

    def run(self, ctx: RunContext, ascore: float, width: int, height: int, text: str,
            clip: Any) -> list[tuple[Any, dict[str, Any]]]:
        if _encoder(clip, "clip_g") is None:
            raise ValueError(f"CLIPTextEncodeSDXLRefiner needs an SDXL CLIP (with OpenCLIP-G); this CLIP is "
                             f"{_family(clip)}'s: use CLIPTextEncode")
        cond, pooled = clip.encode(text, ctx.device, _embeddings(ctx, text))
        return [(cond, {"pooled_output": pooled, "aesthetic_score": ascore, "width": width, "height": height})]


NODES = [CLIPTextEncode, CLIPTextEncodeSDXL, CLIPTextEncodeSDXLRefiner]
