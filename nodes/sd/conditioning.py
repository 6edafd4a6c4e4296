"""Turning prompts into conditioning (ComfyUI's node and input names)."""

from __future__ import annotations

from typing import Any

from studio.api import Input, Node, Output, RunContext, String


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
        if "embedding:" not in inputs["text"]:
            return None
        from studio.models.folders import model_folders
        from studio.models.memory import file_identity

        found = []
        for folder in model_folders(ctx.options.models_dir).search_dirs("embeddings"):
            found.extend(file_identity(p) for p in sorted(folder.rglob("*")) if p.is_file())
        return tuple(found)

    def run(self, ctx: RunContext, text: str, clip: Any) -> list[tuple[Any, dict[str, Any]]]:
        from studio.models.folders import model_folders
        from studio.models.text import EmbeddingStore

        embeddings = None
        if "embedding:" in text:
            embeddings = EmbeddingStore(model_folders(ctx.options.models_dir).search_dirs("embeddings"))
        cond, pooled = clip.encode(text, ctx.device, embeddings)
        extras: dict[str, Any] = {}
        if pooled is not None:
            extras["pooled_output"] = pooled
        return [(cond, extras)]


NODES = [CLIPTextEncode]
