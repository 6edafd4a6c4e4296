"""Prompt → CLIP conditioning, computed the way ComfyUI's CLIPTextEncode computes it.

A prompt is parsed (``studio.models.prompt``), tokenised with the bundled CLIP BPE tokenizer,
cut into chunks of 75 tokens (each wrapped as BOS + 75 + EOS/pad = 77), encoded by every text
encoder of the model, weighted, and concatenated: along the sequence for long prompts
(77·k tokens), along the features for SDXL's two encoders (768 + 1280 = 2048).

Facts this module relies on (ComfyUI, ``comfy/sd1_clip.py``, ``sd2_clip.py``, ``sdxl_clip.py``,
``clip_model.py``):

* SD1 (``SDClipModel`` defaults): layer "last", ``layer_norm_hidden_state=True``, pads with
  ``<|endoftext|>`` (49407). CLIPSetLastLayer(-2) selects the output of the second-to-last
  transformer layer and still applies ``final_layer_norm`` to it.
* SD2 (``SD2ClipHModel``): layer "penultimate" with the final layer norm (the default
  ``layer_norm_hidden_state=True``), pads with ``!`` (id 0, ``SD2ClipHTokenizer(pad_with_end=False)``).
* SDXL (``SDXLClipModel``): clip_l = hidden layer -2 (``layer_idx=11`` of 12) and clip_g =
  "penultimate", both with ``layer_norm_hidden_state=False``; clip_g pads with 0 and gives the
  pooled output; the result is ``torch.cat([l_out, g_out], dim=-1)`` with ``g_pooled``.
* Weighting (``ClipTokenWeightEncoder.encode_token_weights``): at each position whose weight is
  not 1, ``z = (z - z_empty) * w + z_empty``, where ``z_empty`` encodes BOS + EOS + pad…;
  the pooled output is the unweighted pooled output of the first chunk.
* Pooled output (``CLIPTextModel_.forward``): the final-layer-normed last layer at the (first)
  EOS token, through ``text_projection``, whatever layer the hidden states come from.
* Chunking (``SDTokenizer.tokenize_with_weights``): a word shorter than 8 tokens that does not
  fit in the current chunk moves whole to the next one; longer words are split.
* CLIPSetLastLayer (``set_clip_options``): layer -n is the output of the n-th layer from the
  end (-1 = the last layer, before the final norm); an index beyond the depth means "last".
* ``BREAK`` (A1111 ``modules/sd_hijack_clip.py``): closes the current chunk, even an empty one;
  a trailing BREAK adds no empty chunk.

In transformers 5.x a CLIP text model's forward takes ``input_ids`` only (no ``inputs_embeds``),
so textual-inversion vectors are spliced in by a forward hook on the token-embedding module:
the model runs its own, unchanged forward, and only the rows for the embedding's positions are
replaced. The same hook works on transformers 4.x.
"""

from __future__ import annotations

import hashlib
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from studio.core.errors import NuanceError
from studio.core.resources import resource_path
from studio.models.prompt import Segment, parse_prompt

if TYPE_CHECKING:
    from transformers import CLIPTokenizer

__all__ = [
    "CHUNK_LENGTH",
    "CHUNK_TOKENS",
    "EmbeddingError",
    "EmbeddingStore",
    "TextEncoderSpec",
    "TextEncodingError",
    "TextualInversion",
    "TokenChunk",
    "clear_encoding_cache",
    "encode_prompt",
    "load_bundled_tokenizer",
    "sd1_encoder",
    "sd2_encoder",
    "sdxl_encoders",
    "tokenize_prompt",
]

CHUNK_TOKENS = 75
CHUNK_LENGTH = CHUNK_TOKENS + 2
MAX_WORD_TOKENS = 8  # ComfyUI's max_word_length: shorter words are never split across chunks
CHUNK_CACHE_ENTRIES = 64  # one SDXL clip_g chunk is 77 × 1280 floats ≈ 0.4 MB
SAFE_EXTENSIONS = (".safetensors",)
PICKLE_EXTENSIONS = (".pt", ".bin", ".ckpt", ".pth")
_LAYER_NAMES = {"last": None, "penultimate": -2}


class TextEncodingError(NuanceError, ValueError):
    """A prompt could not be encoded (bad encoder setup, missing tokenizer data …)."""


class EmbeddingError(TextEncodingError):
    """A textual-inversion embedding is missing, unreadable or made for another model."""


# ---------------------------------------------------------------------------- tokenizer


def load_bundled_tokenizer(pad_with_end: bool = True) -> CLIPTokenizer:
    """The CLIP BPE tokenizer shipped in ``resources/tokenizers/clip``.

    SD1's CLIP pads with ``<|endoftext|>``; the OpenCLIP encoders of SD2 and SDXL pad with ``!``
    (id 0), hence ``pad_with_end=False``. The vocabulary is the same for all of them.
    """
    from transformers import CLIPTokenizer

    path = resource_path("tokenizers", "clip")
    if not (path / "vocab.json").is_file() or not (path / "merges.txt").is_file():
        raise TextEncodingError(f"the bundled CLIP tokenizer is missing from {path} (vocab.json, merges.txt); reinstall")
    extra = {} if pad_with_end else {"pad_token": "!"}
    return CLIPTokenizer.from_pretrained(str(path), local_files_only=True, **extra)


# ---------------------------------------------------------------------------- encoders


@dataclass(frozen=True, eq=False)
class TextEncoderSpec:
    """One CLIP text encoder of a model and how ComfyUI reads its output.

    ``model`` is a transformers ``CLIPTextModel`` or ``CLIPTextModelWithProjection``.
    ``layer`` is "last", "penultimate" or CLIPSetLastLayer's negative index (-1 = last layer).
    ``layer_norm_hidden_state`` applies the final layer norm to a non-"last" layer (SD1, SD2).
    ``returns_pooled`` asks for the projected pooled output (SDXL's clip_g).
    ``name`` picks the tensor of a multi-encoder embedding file (``clip_l``, ``clip_g``) and
    names the encoder in messages. ``cache_token`` must change whenever the weights change in
    place, so cached encodings are not reused across weights. ``patches`` are the LoRA updates
    (:mod:`studio.models.lora`) this encoder runs with; they are part of the cache key too.
    """

    model: Any
    tokenizer: Any
    name: str = "clip_l"
    pad_with_end: bool = True
    layer: str | int = "last"
    layer_norm_hidden_state: bool = True
    returns_pooled: bool = False
    cache_token: Hashable = None
    patches: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        layer = self.layer
        if isinstance(layer, bool) or not (layer in _LAYER_NAMES or (isinstance(layer, int) and layer < 0)):
            raise TextEncodingError(
                f"text encoder {self.name}: layer must be 'last', 'penultimate' or a negative index, not {layer!r}"
            )
        if self.returns_pooled and getattr(self.model, "text_projection", None) is None:
            raise TextEncodingError(
                f"text encoder {self.name}: pooled output needs a CLIPTextModelWithProjection, got {type(self.model).__name__}"
            )

    def with_layer(self, layer: str | int) -> TextEncoderSpec:
        """A copy reading another layer (what CLIPSetLastLayer does)."""
        return replace(self, layer=layer)

    def with_patches(self, patches: tuple[Any, ...]) -> TextEncoderSpec:
        """A copy that runs with these LoRA patches (see :func:`studio.models.lora.sync_patches`)."""
        return replace(self, patches=patches)

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def hidden_state_index(self) -> int | None:
        """Index into transformers' ``hidden_states`` (None: the final, normed output)."""
        index = _LAYER_NAMES[self.layer] if isinstance(self.layer, str) else self.layer
        if index is None or abs(index) > int(self.model.config.num_hidden_layers):
            return None  # ComfyUI's set_clip_options: an index beyond the depth means "last"
        return index

    @property
    def pad_id(self) -> int:
        return self.eos_id if self.pad_with_end else 0

    @property
    def bos_id(self) -> int:
        return int(self.tokenizer.bos_token_id)

    @property
    def eos_id(self) -> int:
        return int(self.tokenizer.eos_token_id)


def sd1_encoder(model: Any, tokenizer: Any = None, *, layer: str | int = "last") -> TextEncoderSpec:
    """SD1.x: OpenAI CLIP ViT-L/14, last layer (CLIPSetLastLayer -2 = "clip skip 2")."""
    return TextEncoderSpec(model, tokenizer or load_bundled_tokenizer(True), "clip_l", True, layer, True, False)


def sd2_encoder(model: Any, tokenizer: Any = None, *, layer: str | int = "last") -> TextEncoderSpec:
    """SD2.x: OpenCLIP ViT-H/14, penultimate layer with the final layer norm, pads with 0.

    The loader builds this encoder without the file's unused last block (as diffusers does), so
    the model's own last layer *is* the penultimate one of the original: hence ``"last"``.
    """
    return TextEncoderSpec(model, tokenizer or load_bundled_tokenizer(False), "clip_h", False, layer, True, False)


def sdxl_encoders(
    clip_l: Any,
    clip_g: Any,
    tokenizer_l: Any = None,
    tokenizer_g: Any = None,
    *,
    layer: str | int = "penultimate",
) -> list[TextEncoderSpec]:
    """SDXL: CLIP ViT-L (768) then OpenCLIP bigG (1280, pooled), both penultimate, no final norm."""
    return [
        TextEncoderSpec(clip_l, tokenizer_l or load_bundled_tokenizer(True), "clip_l", True, layer, False, False),
        TextEncoderSpec(clip_g, tokenizer_g or load_bundled_tokenizer(False), "clip_g", False, layer, False, True),
    ]


# ---------------------------------------------------------------------------- embeddings


@dataclass(frozen=True, eq=False)
class TextualInversion:
    """A loaded embedding file: its tensors by key, each ``[n, width]`` float32 on the CPU."""

    name: str
    path: Path
    tensors: dict[str, torch.Tensor]
    digest: str

    def vectors_for(self, encoder: TextEncoderSpec) -> torch.Tensor:
        """The vectors this encoder takes: the tensor named after it, else the one of its width."""
        width = encoder.hidden_size
        named = self.tensors.get(encoder.name)
        if named is not None and named.shape[-1] == width:
            return named
        fitting = {key: t for key, t in self.tensors.items() if t.shape[-1] == width}
        for key in ("emb_params", "string_to_param.*", *sorted(fitting)):
            if key in fitting:
                return fitting[key]
        widths = ", ".join(f"{key}: {t.shape[-1]}" for key, t in self.tensors.items())
        raise EmbeddingError(
            f"embedding '{self.name}' ({self.path}) holds vectors of width {widths}, but text encoder "
            f"{encoder.name} needs width {width}: it was made for another model family "
            "(SD1: 768, SD2: 1024, SDXL: clip_l 768 + clip_g 1280)"
        )


def _tensors_from_mapping(data: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    """Floating tensors of a (nested) mapping, flattened to ``a.b`` keys and shaped [n, width]."""
    found: dict[str, torch.Tensor] = {}
    if not isinstance(data, dict):
        return found
    for key, value in data.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict):
            found.update(_tensors_from_mapping(value, full + "."))
        elif isinstance(value, torch.Tensor) and value.is_floating_point() and value.ndim >= 1 and value.numel() > 0:
            found[full] = value.detach().reshape(-1, value.shape[-1]).to(torch.float32)
    return found


class EmbeddingStore:
    """Textual-inversion embeddings in one or more ``embeddings/`` folders.

    Names are looked up as ComfyUI does: the path relative to a folder, with or without its
    extension, then in every sub-folder (``embedding:ink`` finds ``styles/ink.safetensors``).
    Files are ``.safetensors`` in A1111 (``emb_params``), flattened ``string_to_param.*`` or SDXL
    (``clip_l`` + ``clip_g``) layout. Pickles (``.pt``, ``.bin``) can run code when loaded, so
    they are refused unless ``allow_pickle=True``, and even then are read with
    ``torch.load(weights_only=True)``.
    """

    def __init__(self, folders: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], *, allow_pickle: bool = False):
        if isinstance(folders, str | os.PathLike):
            folders = [folders]
        self.folders: list[Path] = [Path(f) for f in folders]
        self.allow_pickle = allow_pickle
        self._loaded: dict[tuple[Path, int, int], TextualInversion] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"EmbeddingStore({[str(f) for f in self.folders]!r})"

    def _files(self) -> list[tuple[Path, str]]:
        """Every embedding-like file, with its path relative to its folder (posix)."""
        found = []
        for folder in self.folders:
            if not folder.is_dir():
                continue
            for dirpath, _dirs, names in os.walk(folder, followlinks=True):
                for file_name in names:
                    if file_name.lower().endswith(SAFE_EXTENSIONS + PICKLE_EXTENSIONS):
                        path = Path(dirpath, file_name)
                        found.append((path, path.relative_to(folder).as_posix()))
        return found

    def names(self) -> list[str]:
        """The names the store can load (relative paths without extension), sorted."""
        return sorted({rel.rsplit(".", 1)[0] for _path, rel in self._files()})

    def find(self, name: str) -> Path:
        """The file an ``embedding:name`` refers to; raises EmbeddingError naming where it looked."""
        wanted = name.replace("\\", "/").strip().strip("/")
        parts = wanted.split("/")
        if not wanted or ".." in parts:
            raise EmbeddingError(f"embedding name {name!r} is not a file name inside the embeddings folders")
        extensions = SAFE_EXTENSIONS + PICKLE_EXTENSIONS
        for folder in self.folders:
            base = folder / wanted
            root = os.path.abspath(folder)
            if os.path.commonpath([root, os.path.abspath(base)]) != root:  # e.g. a drive letter
                raise EmbeddingError(f"embedding name {name!r} is not a file name inside the embeddings folders")
            candidates = [base] if base.suffix.lower() in extensions else []
            candidates += [base.with_name(base.name + ext) for ext in extensions]
            for candidate in candidates:
                if candidate.is_file():
                    return candidate
        # Not directly in a folder: look in sub-folders (ComfyUI walks every sub-folder too).
        lowered = wanted.lower()
        matches = []
        for path, rel in self._files():
            rel_lower = rel.lower()
            stem = rel_lower.rsplit(".", 1)[0]
            for form in (rel_lower, stem):
                if form == lowered or form.endswith("/" + lowered):
                    rank = 0 if path.suffix.lower() in SAFE_EXTENSIONS else 1
                    matches.append((rank, rel.count("/"), rel, path))
                    break
        if matches:
            return min(matches)[3]
        where = ", ".join(str(f) for f in self.folders) or "(no embeddings folder is set)"
        raise EmbeddingError(
            f"embedding '{name}' was not found: looked for {wanted}(.safetensors) in {where} and their sub-folders"
        )

    def load(self, name: str) -> TextualInversion:
        """Load (or reuse) the embedding ``name``; the result is cached while the file is unchanged."""
        path = self.find(name)
        if path.suffix.lower() in PICKLE_EXTENSIONS and not self.allow_pickle:
            raise EmbeddingError(
                f"embedding '{name}' is a pickle file ({path}); Nuance Studio does not load pickles, because "
                "opening one can run arbitrary code. Convert it to .safetensors (or use the .safetensors "
                "version of the embedding if its author published one)."
            )
        stat = path.stat()
        key = (path.resolve(), stat.st_mtime_ns, stat.st_size)
        with self._lock:
            cached = self._loaded.get(key)
        if cached is not None:
            return cached
        data = path.read_bytes()
        try:
            if path.suffix.lower() in SAFE_EXTENSIONS:
                from safetensors.torch import load as load_safetensors

                raw: Any = load_safetensors(data)
            else:
                import io

                raw = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as exc:  # a corrupt or foreign file: say which one
            raise EmbeddingError(f"embedding '{name}' ({path}) could not be read: {exc}") from exc
        tensors = _tensors_from_mapping(raw)
        if not tensors:
            raise EmbeddingError(f"embedding '{name}' ({path}) holds no embedding vectors")
        embedding = TextualInversion(name, path, tensors, hashlib.sha256(data).hexdigest())
        with self._lock:
            self._loaded[key] = embedding
        return embedding


# ---------------------------------------------------------------------------- tokenising


@dataclass(frozen=True, eq=False)
class TokenChunk:
    """One 77-token encoder input: ids, per-token weights, and vectors replacing some positions.

    ``length`` counts the prompt's tokens in it (BOS, EOS and padding excluded), so the EOS sits
    at ``length + 1``. ``vectors`` holds ``(position, vector, key)``; the key (embedding digest
    and row) stands for the vector in cache keys, and the position carries placeholder id 0.
    """

    ids: tuple[int, ...]
    weights: tuple[float, ...]
    length: int
    vectors: tuple[tuple[int, torch.Tensor, tuple[str, int]], ...] = ()

    def cache_key(self) -> tuple:
        return (self.ids, tuple((pos, key) for pos, _vec, key in self.vectors))


_STRUCTURAL = 1.0  # BOS/EOS/pad weights are 1.0, as in ComfyUI
_Token = tuple[int, float, "torch.Tensor | None", "tuple[str, int] | None"]


def _word_groups(segment: Segment, encoder: TextEncoderSpec, embeddings: EmbeddingStore | None) -> list[list[_Token]]:
    if segment.embedding is not None:
        if embeddings is None:
            raise EmbeddingError(f"the prompt uses embedding '{segment.embedding}' but no embeddings folder is set up")
        embedding = embeddings.load(segment.embedding)
        vectors = embedding.vectors_for(encoder)
        return [[(0, segment.weight, vectors[i], (embedding.digest, i)) for i in range(vectors.shape[0])]]
    groups = []
    for word in segment.text.split():
        ids = encoder.tokenizer(word, add_special_tokens=False)["input_ids"]
        if ids:
            groups.append([(int(i), segment.weight, None, None) for i in ids])
    return groups


def _chunks_of_tokens(
    segments: Sequence[Segment], encoder: TextEncoderSpec, embeddings: EmbeddingStore | None
) -> list[list[_Token]]:
    chunks: list[list[_Token]] = [[]]
    for segment in segments:
        if segment.is_break:
            chunks.append([])
            continue
        for group in _word_groups(segment, encoder, embeddings):
            is_large = len(group) >= MAX_WORD_TOKENS
            while group:
                room = CHUNK_TOKENS - len(chunks[-1])
                if len(group) <= room:
                    chunks[-1].extend(group)
                    group = []
                else:
                    if is_large:
                        chunks[-1].extend(group[:room])
                        group = group[room:]
                    chunks.append([])
    if len(chunks) > 1 and not chunks[-1]:
        chunks.pop()  # a trailing BREAK (or an exact fit) adds no empty chunk
    return chunks


def _wrap(tokens: Sequence[_Token], encoder: TextEncoderSpec) -> TokenChunk:
    padding = CHUNK_TOKENS - len(tokens)
    ids = (encoder.bos_id, *(t[0] for t in tokens), encoder.eos_id, *([encoder.pad_id] * padding))
    weights = (_STRUCTURAL, *(float(t[1]) for t in tokens), *([_STRUCTURAL] * (padding + 1)))
    vectors = tuple((pos + 1, t[2], t[3]) for pos, t in enumerate(tokens) if t[2] is not None)
    return TokenChunk(ids, weights, len(tokens), vectors)


def tokenize_prompt(
    text: str | Sequence[Segment], encoder: TextEncoderSpec, *, embeddings: EmbeddingStore | None = None
) -> list[TokenChunk]:
    """The 77-token chunks an encoder sees for a prompt (always at least one)."""
    segments = parse_prompt(text) if isinstance(text, str) else text
    return [_wrap(tokens, encoder) for tokens in _chunks_of_tokens(segments, encoder, embeddings)]


def _empty_chunk(encoder: TextEncoderSpec) -> TokenChunk:
    return _wrap((), encoder)


# ---------------------------------------------------------------------------- encoding


class _ChunkCache:
    """LRU of raw (unweighted) chunk encodings, kept on the CPU in float32.

    Keyed by the encoder's identity and options and the chunk's tokens; weights are applied
    after the cache, so changing only a weight costs no encoder call either. Each entry holds a
    weak reference to its model, so a new model that reuses a freed model's id() never hits.
    """

    def __init__(self, max_entries: int):
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple, tuple[weakref.ref, torch.Tensor, torch.Tensor | None]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple, model: Any) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0]() is not model:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[1], entry[2]

    def put(self, key: tuple, model: Any, z: torch.Tensor, pooled: torch.Tensor | None) -> None:
        with self._lock:
            self._entries[key] = (weakref.ref(model), z, pooled)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_CACHE = _ChunkCache(CHUNK_CACHE_ENTRIES)
_HOOK_LOCK = threading.RLock()  # the splice hook is per module: one forward at a time


def clear_encoding_cache() -> None:
    """Forget every cached chunk encoding (e.g. after weights were changed in place)."""
    _CACHE.clear()


def _final_layer_norm(model: Any) -> torch.nn.Module:
    for owner in (model, getattr(model, "text_model", None)):
        norm = getattr(owner, "final_layer_norm", None)
        if norm is not None:
            return norm
    raise TextEncodingError(f"{type(model).__name__} has no final_layer_norm; is it a CLIP text model?")


def _run_encoder(encoder: TextEncoderSpec, chunks: Sequence[TokenChunk]) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """Encode chunks in one batch; returns (z [77, width], pooled [proj] | None) per chunk."""
    from studio.models.lora import sync_patches

    model = encoder.model
    sync_patches(model, encoder.patches)  # this encoder's LoRAs, and no one else's
    token_embedding = model.get_input_embeddings()
    device = token_embedding.weight.device
    ids = torch.tensor([chunk.ids for chunk in chunks], dtype=torch.long, device=device)
    rows = [(b, pos, vec) for b, chunk in enumerate(chunks) for pos, vec, _key in chunk.vectors]
    width = encoder.hidden_size
    for _b, _pos, vec in rows:
        if vec.shape[-1] != width:
            raise EmbeddingError(f"an embedding vector of width {vec.shape[-1]} cannot go into {encoder.name} (width {width})")
    spliced = []

    def splice(_module: torch.nn.Module, _args: Any, output: torch.Tensor) -> torch.Tensor:
        output = output.clone()
        for b, pos, vec in rows:
            output[b, pos] = vec.to(device=output.device, dtype=output.dtype)
        spliced.append(True)
        return output

    index = encoder.hidden_state_index
    with _HOOK_LOCK, torch.no_grad():
        handle = token_embedding.register_forward_hook(splice) if rows else None
        try:
            out = model(input_ids=ids, output_hidden_states=index is not None)
        finally:
            if handle is not None:
                handle.remove()
        if rows and not spliced:
            raise TextEncodingError(f"{type(model).__name__} did not use its token embedding; embeddings cannot be applied")
        if index is None:
            z = out.last_hidden_state
        else:
            z = out.hidden_states[index]
            if encoder.layer_norm_hidden_state:
                z = _final_layer_norm(model)(z)
        pooled = None
        if encoder.returns_pooled:
            # The first EOS follows the content, at position length + 1.
            eos = torch.tensor([chunk.length + 1 for chunk in chunks], device=device)
            last = out.last_hidden_state[torch.arange(len(chunks), device=device), eos]
            pooled = model.text_projection(last)
    results = []
    for b in range(len(chunks)):
        results.append(
            (z[b].detach().to("cpu", torch.float32), None if pooled is None else pooled[b].detach().to("cpu", torch.float32))
        )
    return results


def _encode_chunks(encoder: TextEncoderSpec, chunks: Sequence[TokenChunk]) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """Raw encodings of the chunks, from the cache where possible."""
    model = encoder.model
    from studio.models.lora import patch_signature

    prefix = (
        id(model),
        encoder.cache_token,
        patch_signature(encoder.patches),
        encoder.hidden_state_index,
        encoder.layer_norm_hidden_state,
        encoder.returns_pooled,
    )
    keys = [(*prefix, chunk.cache_key()) for chunk in chunks]
    found: dict[tuple, tuple[torch.Tensor, torch.Tensor | None]] = {}
    missing: dict[tuple, TokenChunk] = {}
    for key, chunk in zip(keys, chunks):
        hit = _CACHE.get(key, model)
        if hit is not None:
            found[key] = hit
        else:
            missing[key] = chunk
    if missing:
        for key, result in zip(missing, _run_encoder(encoder, list(missing.values()))):
            _CACHE.put(key, model, *result)
            found[key] = result
    return [found[key] for key in keys]


def _encode_for(
    encoder: TextEncoderSpec, segments: Sequence[Segment], embeddings: EmbeddingStore | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    chunks = tokenize_prompt(segments, encoder, embeddings=embeddings)
    weighted = any(w != 1.0 for chunk in chunks for w in chunk.weights)
    encoded = _encode_chunks(encoder, [*chunks, _empty_chunk(encoder)] if weighted else chunks)
    outputs = []
    z_empty = encoded[-1][0] if weighted else None
    for chunk, (z, _pooled) in zip(chunks, encoded):
        if weighted:
            w = torch.tensor(chunk.weights, dtype=z.dtype).unsqueeze(-1)
            z = torch.where(w != 1.0, (z - z_empty) * w + z_empty, z)
        outputs.append(z)
    pooled = encoded[0][1]
    return torch.cat(outputs, dim=0), None if pooled is None else pooled.clone()  # never hand out the cache's tensor


def encode_prompt(
    text: str,
    encoders: Sequence[TextEncoderSpec],
    *,
    embeddings: EmbeddingStore | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Encode a prompt: ``cond [1, 77·k, sum of widths]`` and the pooled output ``[1, proj]``.

    The pooled output comes from the first encoder with ``returns_pooled`` (None without one).
    The results land on ``device`` (the CPU when None) in ``dtype``; the encoders run where
    their weights are.
    """
    if not encoders:
        raise TextEncodingError("encode_prompt needs at least one text encoder")
    segments = parse_prompt(text)
    conds, pooled = [], None
    for encoder in encoders:
        cond, encoder_pooled = _encode_for(encoder, segments, embeddings)
        conds.append(cond)
        if pooled is None and encoder.returns_pooled:
            pooled = encoder_pooled
    # Embeddings with different vector counts per encoder can chunk differently; ComfyUI cuts
    # to the shorter one (sdxl_clip.SDXLClipModel.encode_token_weights).
    length = min(c.shape[0] for c in conds)
    cond = torch.cat([c[:length] for c in conds], dim=-1).unsqueeze(0)
    target = torch.device(device) if device is not None else torch.device("cpu")
    cond = cond.to(target, dtype)
    if pooled is not None:
        pooled = pooled.unsqueeze(0).to(target, dtype)
    return cond, pooled
