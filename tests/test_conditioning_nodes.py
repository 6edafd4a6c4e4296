"""ComfyUI's conditioning nodes (Combine, Concat, Average, ZeroOut, SetTimestepRange, SetArea…, SetMask,
CLIPTextEncodeSDXL/Refiner) and how the sampler weights several conditioning entries.

The sampler checks use an analytic model: ``model_fn`` predicts a constant per entry, so with
``x = 0`` the x0 prediction of an epsilon model is ``-sigma * v`` and the weighted combination
ComfyUI's ``calc_cond_batch`` makes is known exactly. A few runs use the tiny random SD 1 model
(``tests/tiny_models.py``) to show the real UNet path works the same way.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import tiny_models  # tests/ is on sys.path (pytest's default import mode)
import torch
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from nodes.sd import NODE_PACK
from nodes.sd.conditioning import CLIPTextEncodeSDXL, CLIPTextEncodeSDXLRefiner
from nodes.sd.conditioning_ops import (
    ConditioningAverage,
    ConditioningCombine,
    ConditioningConcat,
    ConditioningSetArea,
    ConditioningSetAreaPercentage,
    ConditioningSetAreaStrength,
    ConditioningSetMask,
    ConditioningSetTimestepRange,
    ConditioningZeroOut,
)
from studio.models.handles import ClipHandle, ModelHandle
from studio.models.ksampler import (
    RegionalDenoiser,
    SamplingRequest,
    make_region,
    percent_to_sigma,
    resolve_conditioning,
    run_sampler,
)
from studio.models.sampling import CFGDenoiser, ModelSigmas
from studio.models.text import clear_encoding_cache, encode_prompt, load_bundled_tokenizer, sd1_encoder, sdxl_encoders

CTX: Any = SimpleNamespace(device="cpu")
SIGMAS = ModelSigmas()


def entry(value: float = 0.0, tokens: int = 77, features: int = 8, **extras: Any) -> tuple[torch.Tensor, dict[str, Any]]:
    return torch.full((1, tokens, features), float(value)), dict(extras)


# ------------------------------------------------------------------------------ declarations


def _inputs(node: Any) -> list[tuple]:
    return [(i.name, i.type, i.default if i.has_default else None, i.min, i.max, i.step) for i in node.INPUTS]


def test_inputs_match_comfyui_names_order_defaults_and_ranges():
    cond = ("conditioning", "CONDITIONING", None, None, None, None)
    strength = ("strength", "FLOAT", 1.0, 0.0, 10.0, 0.01)
    assert _inputs(ConditioningCombine) == [("conditioning_1", "CONDITIONING", None, None, None, None),
                                            ("conditioning_2", "CONDITIONING", None, None, None, None)]
    assert [i.name for i in ConditioningConcat.INPUTS] == ["conditioning_to", "conditioning_from"]
    assert _inputs(ConditioningAverage)[2] == ("conditioning_to_strength", "FLOAT", 1.0, 0.0, 1.0, 0.01)
    assert _inputs(ConditioningZeroOut) == [cond]
    assert _inputs(ConditioningSetTimestepRange) == [cond, ("start", "FLOAT", 0.0, 0.0, 1.0, 0.001),
                                                     ("end", "FLOAT", 1.0, 0.0, 1.0, 0.001)]
    assert _inputs(ConditioningSetArea) == [cond, ("width", "INT", 64, 64, 16384, 8), ("height", "INT", 64, 64, 16384, 8),
                                            ("x", "INT", 0, 0, 16384, 8), ("y", "INT", 0, 0, 16384, 8), strength]
    assert _inputs(ConditioningSetAreaPercentage) == [cond, ("width", "FLOAT", 1.0, 0.0, 1.0, 0.01),
                                                      ("height", "FLOAT", 1.0, 0.0, 1.0, 0.01),
                                                      ("x", "FLOAT", 0.0, 0.0, 1.0, 0.01),
                                                      ("y", "FLOAT", 0.0, 0.0, 1.0, 0.01), strength]
    assert _inputs(ConditioningSetAreaStrength) == [cond, strength]
    assert [i.name for i in ConditioningSetMask.INPUTS] == ["conditioning", "mask", "strength", "set_cond_area"]
    assert ConditioningSetMask.INPUTS[3].choices == ["default", "mask bounds"]
    size = [("width", 1024), ("height", 1024), ("crop_w", 0), ("crop_h", 0), ("target_width", 1024), ("target_height", 1024)]
    assert [(i.name, i.default if i.has_default else None) for i in CLIPTextEncodeSDXL.INPUTS] == [
        ("clip", None), *size, ("text_g", ""), ("text_l", "")]
    assert CLIPTextEncodeSDXL.INPUTS[0].type == "CLIP"
    assert all(i.max == 16384 and i.min == 0 for i in CLIPTextEncodeSDXL.INPUTS[1:7])
    assert _inputs(CLIPTextEncodeSDXLRefiner)[:3] == [("ascore", "FLOAT", 6.0, 0.0, 1000.0, 0.01),
                                                      ("width", "INT", 1024, 0, 16384, 1), ("height", "INT", 1024, 0, 16384, 1)]
    assert [i.name for i in CLIPTextEncodeSDXLRefiner.INPUTS] == ["ascore", "width", "height", "text", "clip"]
    assert CLIPTextEncodeSDXLRefiner.INPUTS[3].multiline and CLIPTextEncodeSDXL.INPUTS[7].multiline
    advanced = {"ConditioningZeroOut", "ConditioningSetTimestepRange", "CLIPTextEncodeSDXL", "CLIPTextEncodeSDXLRefiner"}
    names = {n.NAME: n for n in NODE_PACK.nodes}
    for name in ("ConditioningCombine", "ConditioningConcat", "ConditioningAverage", "ConditioningSetArea",
                 "ConditioningSetAreaPercentage", "ConditioningSetAreaStrength", "ConditioningSetMask", *advanced):
        node = names[name]  # registered in the sd pack
        assert node.CATEGORY == ("advanced/conditioning" if name in advanced else "conditioning")
        assert len(node.DESCRIPTION) > 40


# ------------------------------------------------------------------------------ node outputs


def test_combine_lists_both_sides_entries():
    a, b, c = entry(1), entry(2), entry(3)
    out = ConditioningCombine().run(CTX, [a], [b, c])
    assert [e[0] for e in out] == [a[0], b[0], c[0]]


def test_concat_appends_the_first_from_entry_to_every_to_entry():
    to = [entry(1, 77, pooled_output=torch.ones(1, 4)), entry(2, 154)]
    out = ConditioningConcat().run(CTX, to, [entry(5, 77), entry(9, 77)])
    assert [e[0].shape[1] for e in out] == [154, 231]
    assert torch.equal(out[0][0][:, :77], to[0][0]) and torch.equal(out[0][0][:, 77:], torch.full((1, 77, 8), 5.0))
    assert torch.equal(out[0][1]["pooled_output"], torch.ones(1, 4)) and out[0][1] is not to[0][1]


def test_average_blends_exactly_and_pads_or_cuts_tokens():
    to = [entry(1, 154, pooled_output=torch.full((1, 4), 1.0))]
    source = [entry(3, 77, pooled_output=torch.full((1, 4), 3.0))]
    node = ConditioningAverage()
    assert torch.equal(node.run(CTX, to, source, 1.0)[0][0], to[0][0])
    zero = node.run(CTX, to, source, 0.0)[0]
    assert torch.equal(zero[0][:, :77], torch.full((1, 77, 8), 3.0)) and torch.equal(zero[0][:, 77:], torch.zeros(1, 77, 8))
    assert torch.equal(zero[1]["pooled_output"], torch.full((1, 4), 3.0))
    half = node.run(CTX, to, source, 0.5)[0]
    assert torch.equal(half[0][:, :77], torch.full((1, 77, 8), 2.0)) and torch.equal(half[0][:, 77:], torch.full((1, 77, 8), 0.5))
    assert torch.equal(half[1]["pooled_output"], torch.full((1, 4), 2.0))
    cut = node.run(CTX, [entry(1, 77)], [entry(3, 154, pooled_output=torch.ones(1, 4))], 0.25)[0]
    assert cut[0].shape == (1, 77, 8) and torch.equal(cut[0], torch.full((1, 77, 8), 2.5))
    assert torch.equal(cut[1]["pooled_output"], torch.ones(1, 4))  # "to" had none: from's is taken


def test_zero_out_zeros_embedding_and_pooled_and_keeps_the_rest():
    source = [entry(3, pooled_output=torch.ones(1, 4), width=512)]
    out = ConditioningZeroOut().run(CTX, source)[0]
    assert torch.equal(out[0], torch.zeros(1, 77, 8)) and torch.equal(out[1]["pooled_output"], torch.zeros(1, 4))
    assert out[1]["width"] == 512 and torch.equal(source[0][0], torch.full((1, 77, 8), 3.0))


def test_setters_set_the_extras_comfyui_sets_and_leave_the_input_alone():
    source = [entry(1, pooled_output=torch.ones(1, 4))]
    ranged = ConditioningSetTimestepRange().run(CTX, source, 0.2, 0.7)[0][1]
    assert (ranged["start_percent"], ranged["end_percent"]) == (0.2, 0.7) and "start_percent" not in source[0][1]
    area = ConditioningSetArea().run(CTX, source, 200, 100, 36, 20, 1.5)[0][1]
    assert area["area"] == (12, 25, 2, 4) and area["strength"] == 1.5 and area["set_area_to_bounds"] is False
    pct = ConditioningSetAreaPercentage().run(CTX, source, 0.5, 0.25, 0.1, 0.2, 2.0)[0][1]
    assert pct["area"] == ("percentage", 0.25, 0.5, 0.2, 0.1) and pct["strength"] == 2.0
    assert ConditioningSetAreaStrength().run(CTX, source, 0.3)[0][1]["strength"] == 0.3
    mask = torch.ones(16, 16)
    masked = ConditioningSetMask().run(CTX, source, mask, 0.8, "mask bounds")[0][1]
    assert masked["mask"].shape == (1, 16, 16) and masked["mask_strength"] == 0.8 and masked["set_area_to_bounds"] is True
    assert ConditioningSetMask().run(CTX, source, mask[None], 1.0, "default")[0][1]["set_area_to_bounds"] is False
    assert set(source[0][1]) == {"pooled_output"}


# ------------------------------------------------------------------------------ the sampler, analytically


def constant_model(calls: list | None = None):
    """An epsilon "UNet" whose output is the entry's constant ``v``, for every pixel."""
    def model_fn(x_in: torch.Tensor, t: torch.Tensor, cond: dict[str, Any]) -> torch.Tensor:
        if calls is not None:
            calls.append((tuple(x_in.shape), cond["v"].tolist()))
        return cond["v"].reshape(-1, 1, 1, 1).expand_as(x_in).clone()
    return model_fn


def denoiser(positive: list, negative: list, cfg: float = 1.0, shape=(1, 4, 8, 8), calls: list | None = None):
    """A RegionalDenoiser for (value, extras) entries, built as run_sampler builds it."""
    pos = [entry(v, **e) for v, e in positive]
    neg = [entry(v, **e) for v, e in negative]
    pos, neg = resolve_conditioning(pos, neg, shape[-2:])

    def regions(entries):
        return [make_region({"v": torch.full((shape[0],), float(c[0, 0, 0]))}, extras, shape, SIGMAS) for c, extras in entries]
    return RegionalDenoiser(constant_model(calls), SIGMAS, positive=regions(pos), negative=regions(neg), cfg=cfg)


def x0(d: RegionalDenoiser, sigma: float = 1.0, shape=(1, 4, 8, 8)) -> torch.Tensor:
    return d(torch.zeros(shape), torch.full((shape[0],), sigma))  # x = 0: x0 = -sigma * v


def test_a_combined_conditioning_is_the_average_of_the_two_predictions():
    out = x0(denoiser([(1, {}), (3, {})], []))
    assert torch.equal(out, torch.full((1, 4, 8, 8), -2.0))
    weighted = x0(denoiser([(1, {}), (4, {"strength": 2.0})], []))  # strength weights the average
    assert torch.allclose(weighted, torch.full((1, 4, 8, 8), -3.0), atol=0, rtol=1e-6)
    guided = x0(denoiser([(1, {}), (3, {})], [(10, {})], cfg=3.0))
    assert torch.allclose(guided, torch.full((1, 4, 8, 8), -10.0 + 3.0 * (-2.0 + 10.0)), rtol=1e-6)
    guided, uncond = denoiser([(1, {}), (3, {})], [(10, {})], cfg=1.0).denoise_with_uncond(torch.zeros(1, 4, 8, 8),
                                                                                         torch.ones(1))
    assert torch.equal(guided, torch.full((1, 4, 8, 8), -2.0)) and torch.equal(uncond, torch.full((1, 4, 8, 8), -10.0))


def test_a_mask_entry_acts_only_in_its_region_weighted_by_strength():
    mask = torch.zeros(1, 64, 64)
    mask[:, :, :32] = 1.0  # the left half of the picture
    out = x0(denoiser([(1, {}), (5, {"mask": mask, "mask_strength": 1.0})], []))
    assert torch.allclose(out[..., :4], torch.full((1, 4, 8, 4), -3.0), rtol=1e-6)
    assert torch.equal(out[..., 4:], torch.full((1, 4, 8, 4), -1.0))
    strong = x0(denoiser([(1, {}), (5, {"mask": mask, "mask_strength": 2.0, "strength": 1.5})], []))
    assert torch.allclose(strong[..., :4], torch.full((1, 4, 8, 4), -(1 + 5 * 3.0) / 4.0), rtol=1e-6)
    bounds = x0(denoiser([(1, {}), (5, {"mask": mask, "mask_strength": 1.0, "set_area_to_bounds": True})], []))
    assert torch.allclose(bounds, out, rtol=1e-6)  # the same result, from a model call on the 8×4 crop


def test_an_area_entry_runs_on_its_crop_and_feathers_inner_edges():
    calls: list = []
    d = denoiser([(1, {}), (5, {"area": (4, 4, 0, 0), "strength": 1.0})], [], calls=calls)
    out = x0(d)
    assert sorted(shape for shape, _v in calls) == [(1, 4, 4, 4), (1, 4, 8, 8)]
    assert torch.allclose(out[..., :4, :4], torch.full((1, 4, 4, 4), -3.0), rtol=1e-6)
    assert torch.equal(out[..., 4:, :], torch.full((1, 4, 4, 8), -1.0))
    # A 16-cell area inside a 32-cell latent ramps its weight over 4 cells (16 // 4) at each inner edge.
    big = denoiser([(0, {}), (8, {"area": (16, 16, 8, 8), "strength": 1.0})], [], shape=(1, 4, 32, 32))
    row = x0(big, shape=(1, 4, 32, 32))[0, 0, 16, 8:24]
    ramp = torch.tensor([0.25, 0.5, 0.75] + [1.0] * 10 + [0.75, 0.5, 0.25])
    assert torch.allclose(row, -8.0 * ramp / (ramp + 1.0), rtol=1e-6)
    pct = denoiser([(0, {}), (8, {"area": ("percentage", 0.5, 0.5, 0.25, 0.25), "strength": 1.0})], [], shape=(1, 4, 32, 32))
    assert torch.equal(x0(pct, shape=(1, 4, 32, 32)), x0(big, shape=(1, 4, 32, 32)))


def test_area_entries_get_a_same_area_partner_on_the_other_side():
    pos = [entry(1), entry(5, area=(4, 4, 0, 0), strength=2.0, start_percent=0.1)]
    neg = [entry(7, pooled_output=torch.ones(1, 4))]
    pos, neg = resolve_conditioning(pos, neg, (8, 8))
    assert len(pos) == 2 and len(neg) == 2
    partner = neg[1]
    assert torch.equal(partner[0], neg[0][0]) and torch.equal(partner[1]["pooled_output"], torch.ones(1, 4))
    assert partner[1]["area"] == (4, 4, 0, 0) and partner[1]["strength"] == 2.0 and partner[1]["start_percent"] == 0.1


def test_an_entry_outside_its_timestep_range_sits_the_step_out():
    late = percent_to_sigma(SIGMAS, 0.5)
    assert late == pytest.approx(float(SIGMAS.sigma(torch.tensor(499.5))))
    high, low = float(SIGMAS.sigma(torch.tensor(900.0))), float(SIGMAS.sigma(torch.tensor(100.0)))
    d = denoiser([(1, {}), (5, {"start_percent": 0.5, "end_percent": 1.0})], [])
    assert torch.allclose(x0(d, high), torch.full((1, 4, 8, 8), -high * 1.0), rtol=1e-6)
    assert torch.allclose(x0(d, low), torch.full((1, 4, 8, 8), -low * 3.0), rtol=1e-6)
    early = denoiser([(1, {"start_percent": 0.0, "end_percent": 0.5}), (5, {"start_percent": 0.5, "end_percent": 1.0})], [])
    assert torch.allclose(x0(early, high), torch.full((1, 4, 8, 8), -high), rtol=1e-6)
    assert torch.allclose(x0(early, low), torch.full((1, 4, 8, 8), -5 * low), rtol=1e-6)
    # No positive entry active: ComfyUI's positive prediction is 0, so CFG gives uncond · (1 - cfg).
    none_active = denoiser([(5, {"start_percent": 0.5})], [(2, {})], cfg=3.0)
    assert torch.allclose(x0(none_active, high), torch.full((1, 4, 8, 8), -2 * high * (1 - 3.0)), rtol=1e-6)


# ------------------------------------------------------------------------------ the real UNet path


@pytest.fixture(scope="module")
def tiny() -> tiny_models.TinyComponents:
    return tiny_models.build_tiny_components(seed=0)


@pytest.fixture(scope="module")
def model(tiny) -> ModelHandle:
    return ModelHandle(tiny.unet, "sd1", "epsilon", ModelSigmas(), name="tiny")


@pytest.fixture(scope="module")
def prompts(tiny) -> dict[str, tuple[torch.Tensor, dict[str, Any]]]:
    clip = ClipHandle([sd1_encoder(tiny.text_encoder)], "sd1")
    return {name: (clip.encode(text, "cpu")[0], {}) for name, text in
            (("a", "a red cube"), ("b", "a blue sphere"), ("n", "blurry"))}


def sample(model: ModelHandle, positive: list, negative: list, steps: int = 2, **kw: Any) -> torch.Tensor:
    request = SamplingRequest(seed=3, steps=steps, cfg=5.0, sampler_name="euler", scheduler="normal", positive=positive,
                              negative=negative, latent={"samples": torch.zeros(1, 4, 8, 8)}, **kw)
    return run_sampler(model, request, "cpu", preview=False)["samples"]


def test_unet_combine_equals_the_average_of_the_single_predictions(model, prompts):
    unet = model.prepare("cpu", torch.float32)

    def model_fn(x, t, cond):
        return unet(x, t, **cond).sample.float()

    def kwargs(name):
        return {"encoder_hidden_states": prompts[name][0]}
    x, sigma = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)), torch.tensor([3.0])
    with torch.inference_mode():
        single = [CFGDenoiser(model_fn, model.model_sigmas, positive=kwargs(n), cfg=1.0)(x, sigma) for n in "ab"]
        both = RegionalDenoiser(model_fn, model.model_sigmas, cfg=1.0, negative=[],
                                positive=[make_region(kwargs(n), {}, x.shape, model.model_sigmas) for n in "ab"])(x, sigma)
    assert torch.allclose(both, (single[0] + single[1]) / 2, atol=1e-5)


def test_the_fast_path_is_unchanged_and_plain_extras_keep_it(model, prompts):
    plain = sample(model, [prompts["a"]], [prompts["n"]])
    full_range = sample(model, [(prompts["a"][0], {"start_percent": 0.0, "end_percent": 1.0, "strength": 1.0})],
                        [prompts["n"]])
    assert torch.equal(plain, full_range)
    combined = sample(model, [prompts["a"], prompts["a"]], [prompts["n"]])  # the regional path, same prediction twice
    assert torch.allclose(plain, combined, atol=1e-4)
    other = sample(model, [prompts["a"], (prompts["b"][0], {"area": (4, 4, 4, 4), "strength": 1.0})], [prompts["n"]])
    assert not torch.allclose(plain, other, atol=1e-3)
    late = sample(model, [prompts["a"], (prompts["b"][0], {"start_percent": 0.99, "end_percent": 1.0})], [prompts["n"]],
                  steps=1)
    assert torch.allclose(late, sample(model, [prompts["a"]], [prompts["n"]], steps=1), atol=1e-4)


def test_a_controlnet_on_an_area_entry_sees_its_hint_resized_to_the_crop(model, prompts, monkeypatch):
    from studio.models.controlnet import ControlNetHandle, ControlStep

    control = ControlStep(ControlNetHandle(tiny_models.build_tiny_controlnet(), "sd1", "tiny-cn"),
                          torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1)), 1.0)
    sizes: list = []
    original = ControlStep.hint_for

    def hint_for(self, batch, height, width, device, dtype):
        sizes.append((height, width))
        return original(self, batch, height, width, device, dtype)
    monkeypatch.setattr(ControlStep, "hint_for", hint_for)
    a, b, n = ((prompts[k][0], {"control": control}) for k in "abn")
    b[1]["area"], b[1]["strength"] = (4, 4, 4, 4), 1.0
    controlled = sample(model, [a, b], [n], steps=1)
    assert set(sizes) == {(64, 64), (32, 32)}  # ComfyUI resizes the whole hint to the crop, it does not cut it
    plain = sample(model, [prompts["a"], (prompts["b"][0], {"area": (4, 4, 4, 4), "strength": 1.0})], [prompts["n"]], steps=1)
    assert not torch.allclose(controlled, plain, atol=1e-3)


def test_a_conditioning_of_another_width_is_refused_by_name(model, prompts):
    with pytest.raises(ValueError, match="2048 wide but the model tiny reads 32-wide"):
        sample(model, [(torch.zeros(1, 77, 2048), {})], [prompts["n"]])
    with pytest.raises(ValueError, match=r"CLIPTextEncodeSDXLRefiner.*not an SDXL refiner"):
        sample(model, [(torch.zeros(1, 77, 1280), {"aesthetic_score": 6.0})], [prompts["n"]])


# ------------------------------------------------------------------------------ SDXL text encoding


def tiny_clip(hidden: int, projection: int | None = None, seed: int = 0):
    torch.manual_seed(seed)
    config = CLIPTextConfig(vocab_size=49408, hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=37, max_position_embeddings=77, projection_dim=projection or hidden,
                            bos_token_id=49406, eos_token_id=49407)
    return (CLIPTextModelWithProjection(config) if projection else CLIPTextModel(config)).eval()


@pytest.fixture(scope="module")
def sdxl_clip() -> ClipHandle:
    clear_encoding_cache()
    specs = sdxl_encoders(tiny_clip(32), tiny_clip(64, 16, seed=1), load_bundled_tokenizer(True), load_bundled_tokenizer(False))
    return ClipHandle(specs, "sdxl", name="tiny-xl")


def test_sdxl_encode_puts_text_l_and_text_g_side_by_side_with_sizes(sdxl_clip):
    out = CLIPTextEncodeSDXL().run(CTX, sdxl_clip, 832, 1216, 16, 32, 1024, 1024, "a castle BREAK at night", "a castle")
    assert len(out) == 1
    cond, extras = out[0]
    assert cond.shape == (1, 154, 32 + 64) and extras["pooled_output"].shape == (1, 16)
    assert {k: extras[k] for k in ("width", "height", "crop_w", "crop_h", "target_width", "target_height")} == {
        "width": 832, "height": 1216, "crop_w": 16, "crop_h": 32, "target_width": 1024, "target_height": 1024}
    spec_l, spec_g = sdxl_clip.encoders
    g, pooled = encode_prompt("a castle BREAK at night", [spec_g])
    l_short, _ = encode_prompt("a castle", [spec_l])
    l_empty, _ = encode_prompt("", [spec_l])
    assert torch.allclose(cond[..., 32:], g, atol=1e-6) and torch.allclose(extras["pooled_output"], pooled, atol=1e-6)
    assert torch.allclose(cond[:, :77, :32], l_short, atol=1e-6)  # the shorter prompt, padded with an empty chunk
    assert torch.allclose(cond[:, 77:, :32], l_empty, atol=1e-6)
    same = CLIPTextEncodeSDXL().run(CTX, sdxl_clip, 1024, 1024, 0, 0, 1024, 1024, "a castle", "a castle")[0][0]
    assert torch.allclose(same, sdxl_clip.encode("a castle", "cpu")[0], atol=1e-6)  # = CLIPTextEncode with one prompt


def test_sdxl_nodes_refuse_an_sd1_clip_and_the_refiner_node_adds_the_score(sdxl_clip, tiny):
    sd1 = ClipHandle([sd1_encoder(tiny.text_encoder)], "sd1")
    with pytest.raises(ValueError, match=r"CLIPTextEncodeSDXL needs an SDXL checkpoint's CLIP.*SD 1\.x"):
        CLIPTextEncodeSDXL().run(CTX, sd1, 1024, 1024, 0, 0, 1024, 1024, "a", "b")
    with pytest.raises(ValueError, match="CLIPTextEncodeSDXLRefiner needs an SDXL CLIP"):
        CLIPTextEncodeSDXLRefiner().run(CTX, 6.0, 1024, 1024, "a", sd1)
    cond, extras = CLIPTextEncodeSDXLRefiner().run(CTX, 2.5, 768, 512, "a castle", sdxl_clip)[0]
    assert cond.shape == (1, 77, 96) and extras["aesthetic_score"] == 2.5
    assert (extras["width"], extras["height"]) == (768, 512) and extras["pooled_output"].shape == (1, 16)
    g_only = ClipHandle([sdxl_clip.encoders[1]], "sdxl_refiner")  # a refiner's CLIP: OpenCLIP-G alone
    cond, extras = CLIPTextEncodeSDXLRefiner().run(CTX, 6.0, 1024, 1024, "a castle", g_only)[0]
    assert cond.shape == (1, 77, 64) and extras["aesthetic_score"] == 6.0
