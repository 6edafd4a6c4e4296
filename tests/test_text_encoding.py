"""Text encoding with real transformers CLIP classes (tiny random weights, so it runs in seconds).

The expected values come from transformers' own forward pass (hidden_states, last_hidden_state,
text_embeds) and from ComfyUI's weighting formula, never from the code under test.
"""

from __future__ import annotations

import copy

import pytest
import torch
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from studio.models.text import (
    EmbeddingError,
    EmbeddingStore,
    TextEncoderSpec,
    TextEncodingError,
    clear_encoding_cache,
    encode_prompt,
    load_bundled_tokenizer,
    sd1_encoder,
    sd2_encoder,
    sdxl_encoders,
    tokenize_prompt,
)

BOS, EOS = 49406, 49407
ASTRONAUT = "a photograph of an astronaut riding a horse"
ASTRONAUT_IDS = [49406, 320, 8853, 539, 550, 18376, 6765, 320, 4558, 49407]
CAT, DOG = 2368, 1929  # "cat</w>", "dog</w>"


def tiny_clip(hidden: int, *, projection: int | None = None, layers: int = 3, seed: int = 0):
    torch.manual_seed(seed)
    config = CLIPTextConfig(
        vocab_size=49408,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=77,
        projection_dim=projection or hidden,
        bos_token_id=BOS,
        eos_token_id=EOS,
    )
    model = CLIPTextModelWithProjection(config) if projection else CLIPTextModel(config)
    return model.eval()


@pytest.fixture(scope="module")
def tok_end():
    return load_bundled_tokenizer(pad_with_end=True)


@pytest.fixture(scope="module")
def tok_zero():
    return load_bundled_tokenizer(pad_with_end=False)


@pytest.fixture(scope="module")
def clip_l():
    return tiny_clip(32)


@pytest.fixture(scope="module")
def clip_g():
    return tiny_clip(64, projection=16, seed=1)


@pytest.fixture
def sd1(clip_l, tok_end):
    return sd1_encoder(clip_l, tok_end)


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_encoding_cache()
    yield
    clear_encoding_cache()


def chunk_ids(prompt_ids: list[int], pad: int) -> torch.Tensor:
    ids = [BOS, *prompt_ids, EOS]
    return torch.tensor([ids + [pad] * (77 - len(ids))])


def hf_forward(model, ids: torch.Tensor):
    with torch.no_grad():
        return model(input_ids=ids, output_hidden_states=True)


def encode(prompt: str, encoders, **kwargs) -> torch.Tensor:
    return encode_prompt(prompt, encoders if isinstance(encoders, list) else [encoders], **kwargs)[0]


# ------------------------------------------------------------------------------ tokenizer


def test_bundled_tokenizer_gives_the_reference_ids(tok_end):
    assert tok_end(ASTRONAUT)["input_ids"] == ASTRONAUT_IDS


def test_sd1_pads_with_end_and_openclip_pads_with_zero(tok_end, tok_zero, clip_l):
    assert tok_end("a", padding="max_length", max_length=77)["input_ids"][-1] == EOS
    assert tok_zero("a", padding="max_length", max_length=77)["input_ids"][-1] == 0
    [sd1_chunk] = tokenize_prompt(ASTRONAUT, sd1_encoder(clip_l, tok_end))
    [sd2_chunk] = tokenize_prompt(ASTRONAUT, sd2_encoder(clip_l, tok_zero))
    assert list(sd1_chunk.ids) == ASTRONAUT_IDS + [EOS] * 67
    assert list(sd2_chunk.ids) == ASTRONAUT_IDS + [0] * 67


def test_a_short_word_that_does_not_fit_moves_whole_to_the_next_chunk(sd1, tok_end):
    word = "photorealistically"
    count = len(tok_end(word, add_special_tokens=False)["input_ids"])
    assert 1 < count < 8
    chunks = tokenize_prompt("cat " * 74 + word, sd1)
    assert [c.length for c in chunks] == [74, count]
    assert chunks[0].ids[75:] == (EOS, EOS)


def test_a_long_word_is_split_across_chunks(sd1, tok_end):
    word = "qzxjvkqzxjvkqzxjvkqzxjvk"
    count = len(tok_end(word, add_special_tokens=False)["input_ids"])
    assert count >= 8
    chunks = tokenize_prompt("cat " * 74 + word, sd1)
    assert [c.length for c in chunks] == [75, count - 1]


# ------------------------------------------------------------------------------ shapes and chunks


def test_short_prompt_gives_77_tokens_matching_the_model(sd1, clip_l):
    cond, pooled = encode_prompt(ASTRONAUT, [sd1])
    assert cond.shape == (1, 77, 32)
    assert pooled is None
    expected = hf_forward(clip_l, chunk_ids(ASTRONAUT_IDS[1:-1], EOS)).last_hidden_state
    assert torch.allclose(cond, expected, atol=1e-6)


def test_about_100_tokens_give_two_chunks(sd1, tok_end):
    prompt = ", ".join([ASTRONAUT] * 11)
    count = len(tok_end(prompt, add_special_tokens=False)["input_ids"])
    assert 75 < count <= 150
    assert encode(prompt, sd1).shape == (1, 154, 32)


def test_break_starts_a_new_chunk_encoded_on_its_own(sd1):
    cond = encode("a cat BREAK a dog", sd1)
    assert cond.shape == (1, 154, 32)
    assert torch.allclose(cond[:, :77], encode("a cat", sd1), atol=1e-6)
    assert torch.allclose(cond[:, 77:], encode("a dog", sd1), atol=1e-6)


def test_leading_break_keeps_an_empty_chunk_and_trailing_break_adds_none(sd1):
    assert encode("a cat BREAK", sd1).shape[1] == 77
    assert encode("BREAK a cat", sd1).shape[1] == 154


def test_empty_prompt_is_one_chunk_of_bos_eos_pad(sd1, clip_l):
    cond = encode("", sd1)
    assert cond.shape == (1, 77, 32)
    assert torch.allclose(cond, hf_forward(clip_l, chunk_ids([], EOS)).last_hidden_state, atol=1e-6)


def test_output_device_and_dtype(sd1):
    cond = encode("a cat", sd1, device="cpu", dtype=torch.float16)
    assert cond.dtype == torch.float16 and cond.device.type == "cpu"


# ------------------------------------------------------------------------------ weights


def test_weight_one_equals_unweighted(sd1):
    assert torch.equal(encode("(a cat:1.0)", sd1), encode("a cat", sd1))
    # In a weighted prompt, the positions of weight 1 keep their unweighted value exactly.
    weighted, plain = encode("a (cat:1.5)", sd1), encode("a cat", sd1)
    assert torch.equal(weighted[:, :2], plain[:, :2])
    assert torch.equal(weighted[:, 3:], plain[:, 3:])
    assert not torch.allclose(weighted[:, 2], plain[:, 2])


@pytest.mark.parametrize("weight", [1.5, 0.5, 0.0, -1.0])
def test_weight_scales_the_distance_from_the_empty_prompt(sd1, weight):
    weighted = encode(f"({'cat'}:{weight}) dog", sd1)
    plain, empty = encode("cat dog", sd1), encode("", sd1)
    # cat sits at position 1; dog (2) and the rest keep weight 1.
    expected = (plain[:, 1] - empty[:, 1]) * weight + empty[:, 1]
    assert torch.allclose(weighted[:, 1], expected, atol=1e-6)
    assert torch.equal(weighted[:, 2:], plain[:, 2:])


def test_emphasis_brackets_weigh_1_1(sd1):
    weighted, plain, empty = encode("(cat)", sd1), encode("cat", sd1), encode("", sd1)
    assert torch.allclose(weighted[:, 1], (plain[:, 1] - empty[:, 1]) * 1.1 + empty[:, 1], atol=1e-6)


# ------------------------------------------------------------------------------ layers


def test_layer_selection_matches_hidden_states(clip_l, tok_end):
    ids = chunk_ids([CAT, DOG], EOS)
    ref = hf_forward(clip_l, ids)
    norm = clip_l.final_layer_norm

    def with_layer(layer, layer_norm=True):
        spec = TextEncoderSpec(clip_l, tok_end, layer=layer, layer_norm_hidden_state=layer_norm)
        return encode("cat dog", spec)

    last, minus1, minus2 = with_layer("last"), with_layer(-1), with_layer(-2)
    assert torch.allclose(last, ref.last_hidden_state, atol=1e-6)
    assert torch.allclose(minus1, ref.last_hidden_state, atol=1e-6)  # -1 + final norm is "last"
    assert torch.allclose(minus2, norm(ref.hidden_states[-2]), atol=1e-6)  # SD1 clip skip: normed
    assert torch.allclose(with_layer("penultimate"), minus2)
    assert torch.allclose(with_layer(-2, layer_norm=False), ref.hidden_states[-2], atol=1e-6)  # SDXL
    assert torch.allclose(with_layer(-3, layer_norm=False), ref.hidden_states[-3], atol=1e-6)
    assert not torch.allclose(minus1, minus2, atol=1e-3)
    assert torch.allclose(with_layer(-10), last)  # beyond the depth: the last layer, as ComfyUI


def test_clip_set_last_layer_copy_reads_another_layer(sd1, clip_l):
    skipped = sd1.with_layer(-2)
    assert skipped.layer == -2 and sd1.layer == "last"
    ref = hf_forward(clip_l, chunk_ids([CAT], EOS))
    assert torch.allclose(encode("cat", skipped), clip_l.final_layer_norm(ref.hidden_states[-2]), atol=1e-6)


@pytest.mark.parametrize("layer", ["first", 0, 2, True])
def test_bad_layer_is_refused(clip_l, tok_end, layer):
    with pytest.raises(TextEncodingError, match="layer"):
        TextEncoderSpec(clip_l, tok_end, layer=layer)


def test_sd2_reads_the_loaded_last_layer_with_final_norm(clip_l, tok_zero):
    # SD 2's encoder is loaded without its unused last block, so the model's last layer is the
    # original's penultimate one: reading "last" (with the final norm) is ComfyUI's SD 2 default.
    ref = hf_forward(clip_l, chunk_ids([CAT], 0))
    cond = encode("cat", sd2_encoder(clip_l, tok_zero))
    assert torch.allclose(cond, clip_l.final_layer_norm(ref.hidden_states[-1]), atol=1e-6)
    assert not torch.allclose(cond, clip_l.final_layer_norm(ref.hidden_states[-2]), atol=1e-3)


# ------------------------------------------------------------------------------ SDXL


def test_sdxl_concatenates_features_and_pools_the_first_chunk(clip_l, clip_g, tok_end, tok_zero):
    encoders = sdxl_encoders(clip_l, clip_g, tok_end, tok_zero)
    cond, pooled = encode_prompt("cat dog", encoders)
    assert cond.shape == (1, 77, 32 + 64)
    assert pooled.shape == (1, 16)
    ref_l = hf_forward(clip_l, chunk_ids([CAT, DOG], EOS))
    ref_g = hf_forward(clip_g, chunk_ids([CAT, DOG], 0))
    assert torch.allclose(cond[..., :32], ref_l.hidden_states[-2], atol=1e-6)  # penultimate, no final norm
    assert torch.allclose(cond[..., 32:], ref_g.hidden_states[-2], atol=1e-6)
    assert torch.allclose(pooled, ref_g.text_embeds, atol=1e-6)

    long_cond, long_pooled = encode_prompt("cat dog BREAK horse", encoders)
    assert long_cond.shape == (1, 154, 96)
    assert torch.allclose(long_pooled, ref_g.text_embeds, atol=1e-6)  # first chunk's pooled
    _cond, weighted_pooled = encode_prompt("(cat:1.4) dog", encoders)
    assert torch.allclose(weighted_pooled, ref_g.text_embeds, atol=1e-6)  # pooled is never weighted


def test_pooled_output_needs_a_projection(clip_l, tok_zero):
    with pytest.raises(TextEncodingError, match="CLIPTextModelWithProjection"):
        TextEncoderSpec(clip_l, tok_zero, returns_pooled=True)


# ------------------------------------------------------------------------------ embeddings


@pytest.fixture
def ink():
    torch.manual_seed(7)
    return torch.randn(2, 32)


@pytest.fixture
def store(tmp_path, ink):
    (tmp_path / "styles").mkdir()
    save_file({"emb_params": ink}, str(tmp_path / "styles" / "ink.safetensors"))
    return EmbeddingStore([tmp_path])


def test_embedding_equals_manual_injection(sd1, clip_l, tok_end, store, ink):
    # The reference: a copy of the model whose "cat" and "dog" rows hold the two vectors.
    patched = copy.deepcopy(clip_l)
    with torch.no_grad():
        patched.get_input_embeddings().weight[CAT] = ink[0]
        patched.get_input_embeddings().weight[DOG] = ink[1]
    expected = encode("a cat dog, b", sd1_encoder(patched, tok_end))
    cond = encode("a embedding:ink, b", sd1, embeddings=store)
    assert torch.allclose(cond, expected, atol=1e-5)
    assert not torch.allclose(cond, encode("a ink, b", sd1), atol=1e-3)
    [chunk] = tokenize_prompt("a embedding:ink, b", sd1, embeddings=store)
    assert chunk.length == 5  # "a", two vectors, ",", "b"
    assert [pos for pos, _vec, _key in chunk.vectors] == [2, 3]


def test_weighted_embedding_follows_the_weight_formula(sd1, store):
    weighted = encode("(embedding:ink:1.5)", sd1, embeddings=store)
    plain, empty = encode("embedding:ink", sd1, embeddings=store), encode("", sd1)
    assert torch.allclose(weighted[:, 1:3], (plain[:, 1:3] - empty[:, 1:3]) * 1.5 + empty[:, 1:3], atol=1e-6)


@pytest.mark.parametrize("name", ["ink", "ink.safetensors", "styles/ink", "styles/ink.safetensors", "styles\\ink", "INK"])
def test_embedding_lookup_with_or_without_folder_and_extension(store, tmp_path, name):
    assert store.find(name) == tmp_path / "styles" / "ink.safetensors"


def test_embedding_names_are_listed(store):
    assert store.names() == ["styles/ink"]


def test_string_to_param_layout(sd1, tmp_path, ink):
    save_file({"string_to_param.*": ink}, str(tmp_path / "old.safetensors"))
    store = EmbeddingStore(tmp_path)
    assert torch.equal(store.load("old").vectors_for(sd1), ink)
    assert encode("embedding:old", sd1, embeddings=store).shape == (1, 77, 32)


def test_sdxl_embedding_gives_each_encoder_its_own_vectors(clip_l, clip_g, tok_end, tok_zero, tmp_path):
    vec_l, vec_g = torch.randn(1, 32), torch.randn(1, 64)
    save_file({"clip_l": vec_l, "clip_g": vec_g}, str(tmp_path / "xl.safetensors"))
    store = EmbeddingStore(tmp_path)
    encoders = sdxl_encoders(clip_l, clip_g, tok_end, tok_zero)
    embedding = store.load("xl")
    assert torch.equal(embedding.vectors_for(encoders[0]), vec_l)
    assert torch.equal(embedding.vectors_for(encoders[1]), vec_g)
    cond, _pooled = encode_prompt("embedding:xl", encoders, embeddings=store)
    assert cond.shape == (1, 77, 96)
    assert not torch.allclose(cond, encode_prompt("xl", encoders)[0], atol=1e-3)


def test_embedding_of_the_wrong_width_is_refused(clip_g, tok_zero, store):
    spec = sd2_encoder(clip_g, tok_zero)  # width 64, the embedding is 32 wide
    with pytest.raises(EmbeddingError, match=r"ink.*width.*32.*needs width 64"):
        encode("embedding:ink", spec, embeddings=store)


def test_missing_embedding_names_it_and_where_it_looked(sd1, store, tmp_path):
    with pytest.raises(EmbeddingError) as info:
        encode("a embedding:nowhere", sd1, embeddings=store)
    assert "nowhere" in str(info.value) and str(tmp_path) in str(info.value)


def test_embedding_without_a_store_is_an_error(sd1):
    with pytest.raises(EmbeddingError, match="ink"):
        encode("embedding:ink", sd1)


def test_pickle_embedding_is_refused_without_unpickling(sd1, tmp_path, monkeypatch):
    (tmp_path / "evil.pt").write_bytes(b"not even a pickle")

    def forbidden(*args, **kwargs):
        raise AssertionError("torch.load must not be called")

    monkeypatch.setattr(torch, "load", forbidden)
    with pytest.raises(EmbeddingError, match=r"evil.*pickle.*safetensors"):
        encode("embedding:evil", sd1, embeddings=EmbeddingStore(tmp_path))


def test_safetensors_is_preferred_over_a_pickle_of_the_same_name(tmp_path, ink):
    (tmp_path / "ink.pt").write_bytes(b"junk")
    save_file({"emb_params": ink}, str(tmp_path / "ink.safetensors"))
    assert EmbeddingStore(tmp_path).find("ink").suffix == ".safetensors"


@pytest.mark.parametrize("name", ["../secret", "styles/../../secret"])
def test_name_escaping_the_folder_is_refused(store, name):
    with pytest.raises(EmbeddingError, match="inside the embeddings folders"):
        store.find(name)


# ------------------------------------------------------------------------------ cache


def count_calls(model) -> list[int]:
    calls = [0]
    model.register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def test_unchanged_prompt_is_not_encoded_again(tok_end):
    model = tiny_clip(32)
    calls = count_calls(model)
    spec = sd1_encoder(model, tok_end)
    first = encode("a cat, a dog", spec)
    assert calls[0] == 1
    second = encode("a cat, a dog", spec)
    assert calls[0] == 1
    assert torch.equal(first, second)
    encode("(a cat:1.2), a dog", spec)  # same tokens, new weight: only the empty prompt is new
    assert calls[0] == 2
    encode("(a cat:1.3), a dog", spec)
    assert calls[0] == 2
    encode("a cat, a horse", spec)
    assert calls[0] == 3


def test_cache_separates_layers_and_cache_tokens(tok_end):
    model = tiny_clip(32)
    calls = count_calls(model)
    spec = sd1_encoder(model, tok_end)
    encode("cat", spec)
    encode("cat", spec.with_layer(-2))
    assert calls[0] == 2
    from dataclasses import replace

    encode("cat", replace(spec, cache_token="lora-a"))
    assert calls[0] == 3
    clear_encoding_cache()
    encode("cat", spec)
    assert calls[0] == 4


def test_results_do_not_share_memory_with_the_cache(clip_l, clip_g, tok_end, tok_zero):
    encoders = sdxl_encoders(clip_l, clip_g, tok_end, tok_zero)
    cond, pooled = encode_prompt("cat", encoders)
    reference = (cond.clone(), pooled.clone())
    cond.zero_()
    pooled.zero_()
    again = encode_prompt("cat", encoders)
    assert torch.equal(again[0], reference[0]) and torch.equal(again[1], reference[1])


def test_no_encoders_is_an_error():
    with pytest.raises(TextEncodingError):
        encode_prompt("cat", [])
