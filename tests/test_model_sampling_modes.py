"""ModelSamplingDiscrete's modes (eps, v_prediction, lcm, x0, img_to_img) and ImageQuantize's ordered dithers.

Each prediction mode is checked against ComfyUI's formula written out by hand for one fixed model
output and sigma (``comfy/model_sampling.py``: EPS, V_PREDICTION, X0, IMG_TO_IMG; and
``comfy_extras/nodes_model_advanced.py``: LCM and ModelSamplingDiscreteDistilled), through both
denoisers, so a mode cannot be read one way on the fast path and another in a regional run. The
lcm mode also runs for real on the tiny SD 1 model with the lcm sampler.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tiny_models  # tests/ is on sys.path (pytest's default import mode)
import torch
from PIL import Image

from nodes.sd.masks import bayer_dither, bayer_threshold_map
from studio.core.graph import Graph
from studio.engine import Executor, RunOptions
from studio.models import folders
from studio.models.handles import DistilledSigmas, ModelHandle, zero_terminal_snr
from studio.models.ksampler import Region, RegionalDenoiser
from studio.models.sampling import CFGDenoiser, ModelSigmas, SeededNoise, get_sigmas, sample
from studio.plugins import create_registry

FULL = ModelSigmas()  # SD's scaled-linear schedule, 1000 steps
X = torch.tensor([[[[0.8, -1.2], [0.3, 2.0]]], [[[-0.5, 0.25], [1.5, -2.5]]]], dtype=torch.float64)  # [2, 1, 2, 2]
OUT = torch.tensor([[[[0.1, 0.4], [-0.7, 0.2]]], [[[0.9, -0.3], [0.05, -1.1]]]], dtype=torch.float64)
SIGMAS = (0.7, 3.0)


def _recording_model(seen: list[tuple[torch.Tensor, torch.Tensor]]) -> Any:
    def model_fn(x_in: torch.Tensor, timestep: torch.Tensor, cond: dict[str, Any]) -> torch.Tensor:
        seen.append((x_in.clone(), timestep.clone()))
        return OUT.clone()

    return model_fn


def _denoise_both_ways(prediction_type: str, model_sigmas: ModelSigmas) -> list[tuple[torch.Tensor, list[Any]]]:
    """The x0 prediction of the fast-path and of the regional denoiser, with what the model was given."""
    sigma = torch.tensor(SIGMAS, dtype=torch.float64)
    results = []
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    fast = CFGDenoiser(_recording_model(seen), model_sigmas, positive={}, prediction_type=prediction_type)
    results.append((fast(X, sigma), list(seen)))
    seen.clear()
    region = Region({}, torch.ones_like(X))
    regional = RegionalDenoiser(_recording_model(seen), model_sigmas, positive=[region], negative=[], cfg=1.0,
                                prediction_type=prediction_type)
    results.append((regional(X, sigma), list(seen)))
    return results


def _column(values: list[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64).view(-1, 1, 1, 1)


def _vp_input() -> torch.Tensor:
    return X / _column([math.sqrt(s * s + 1) for s in SIGMAS])


# -- the x0 formula of each mode, against ComfyUI's written out by hand ------------------------------------------------
def test_eps_is_input_minus_output_times_sigma():
    s = _column(list(SIGMAS))
    for denoised, seen in _denoise_both_ways("epsilon", FULL):
        torch.testing.assert_close(denoised, X - OUT * s)
        torch.testing.assert_close(seen[0][0], _vp_input())


def test_v_prediction_formula():
    s = _column(list(SIGMAS))
    # V_PREDICTION with sigma_data 1: x / (s² + 1) - v · s / sqrt(s² + 1)
    expected = X / (s**2 + 1) - OUT * s / (s**2 + 1).sqrt()
    for denoised, seen in _denoise_both_ways("v_prediction", FULL):
        torch.testing.assert_close(denoised, expected)
        torch.testing.assert_close(seen[0][0], _vp_input())


def test_x0_is_the_model_output_from_the_usual_scaled_input():
    for denoised, seen in _denoise_both_ways("x0", FULL):
        torch.testing.assert_close(denoised, OUT)
        torch.testing.assert_close(seen[0][0], _vp_input())


def test_img_to_img_is_the_model_output_from_the_unscaled_input():
    for denoised, seen in _denoise_both_ways("img_to_img", FULL):
        torch.testing.assert_close(denoised, OUT)
        torch.testing.assert_close(seen[0][0], X)  # IMG_TO_IMG.calculate_input returns the latent as it is


def _distilled_timestep(sigma: float) -> int:
    """By hand: the nearest (in log sigma) of the training steps 19, 39, …, 999."""
    kept = [19 + 20 * k for k in range(50)]
    return min(kept, key=lambda t: abs(math.log(sigma) - math.log(float(FULL.sigmas[t]))))


def test_lcm_applies_the_boundary_condition_at_the_distilled_timestep():
    lcm_sigmas = DistilledSigmas(FULL)
    rows = []
    for i, sigma in enumerate(SIGMAS):
        t = _distilled_timestep(sigma)
        scaled = t * 10.0  # timestep_scaling
        c_skip = 0.5**2 / (scaled**2 + 0.5**2)  # sigma_data 0.5
        c_out = scaled / math.sqrt(scaled**2 + 0.5**2)
        rows.append(c_out * (X[i] - OUT[i] * sigma) + c_skip * X[i])
    expected = torch.stack(rows)
    for denoised, seen in _denoise_both_ways("lcm", lcm_sigmas):
        torch.testing.assert_close(denoised, expected)
        torch.testing.assert_close(seen[0][0], _vp_input())
        assert seen[0][1].tolist() == [float(_distilled_timestep(s)) for s in SIGMAS]


def test_lcm_differs_from_eps_only_by_the_boundary_condition():
    # At large timesteps c_skip -> 0 and c_out -> 1: nearly the eps prediction, but not exactly.
    (lcm, _), _ = _denoise_both_ways("lcm", DistilledSigmas(FULL))
    (eps, _), _ = _denoise_both_ways("epsilon", DistilledSigmas(FULL))
    assert 0 < (lcm - eps).abs().max().item() < 1e-3


def test_unknown_prediction_type_names_the_choices():
    with pytest.raises(ValueError, match="img_to_img"):
        CFGDenoiser(_recording_model([]), FULL, positive={}, prediction_type="flow")


# -- the distilled schedule --------------------------------------------------------------------------------------------
def test_lcm_sigma_table_keeps_50_of_the_1000_training_steps():
    table = DistilledSigmas(FULL)
    assert len(table) == 50 and table.skip_steps == 20
    assert table.sigma_min == float(FULL.sigmas[19])
    assert table.sigma_max == float(FULL.sigmas[999])
    assert torch.equal(table.sigmas, FULL.sigmas[19::20])
    assert table.timestep(torch.tensor(table.sigma_max)).item() == 999
    assert table.timestep(torch.tensor(table.sigma_min)).item() == 19
    # quantised: a sigma between two kept ones goes to the nearer (training steps 499 and 519)
    low, high = float(FULL.sigmas[499]), float(FULL.sigmas[519])
    assert table.timestep(torch.tensor([low * 1.01, high * 0.99])).tolist() == [499.0, 519.0]
    # the inverse interpolates log sigma between kept entries, in training-step units
    torch.testing.assert_close(table.sigma(torch.tensor([19.0, 999.0, 509.0])),
                               torch.tensor([table.sigma_min, table.sigma_max, math.sqrt(low * high)]))


def test_schedulers_read_the_distilled_table():
    table = DistilledSigmas(FULL)
    sgm = get_sigmas("sgm_uniform", 4, table)
    # ComfyUI: timesteps linspace(999, 19, 5)[:-1] mapped back through the 50-entry table
    expected = [float(table.sigma(torch.tensor(t))) for t in (999.0, 754.0, 509.0, 264.0)]
    torch.testing.assert_close(sgm[:-1], torch.tensor(expected))
    simple = get_sigmas("simple", 5, table)
    assert simple[:-1].tolist() == [float(table.sigmas[-1 - 10 * i]) for i in range(5)]


def _handle() -> ModelHandle:
    return ModelHandle(unet=None, arch="sd1", prediction_type="epsilon", model_sigmas=FULL)


def test_sampling_modes_rebuild_from_the_checkpoint_schedule():
    lcm = _handle().with_sampling("lcm")
    assert lcm.prediction_type == "lcm" and isinstance(lcm.model_sigmas, DistilledSigmas)
    back = lcm.with_sampling("eps")
    assert back.prediction_type == "epsilon" and back.model_sigmas is FULL  # as ComfyUI: never compounded
    zsnr_lcm = _handle().with_sampling("lcm", zsnr=True)
    assert torch.equal(zsnr_lcm.model_sigmas.sigmas, zero_terminal_snr(FULL).sigmas[19::20])
    twice = _handle().with_sampling("v_prediction", zsnr=True).with_sampling("v_prediction", zsnr=True)
    assert torch.equal(twice.model_sigmas.sigmas, zero_terminal_snr(FULL).sigmas)
    assert _handle().with_sampling("x0").prediction_type == "x0"
    assert _handle().with_sampling("img_to_img").prediction_type == "img_to_img"
    with pytest.raises(ValueError, match="lcm"):
        _handle().with_sampling("edm")


def test_lcm_sampler_with_lcm_mode_feeds_only_distilled_timesteps():
    table = DistilledSigmas(FULL)
    timesteps: list[float] = []

    def model_fn(x_in: torch.Tensor, timestep: torch.Tensor, cond: dict[str, Any]) -> torch.Tensor:
        timesteps.extend(timestep.tolist())
        return torch.zeros_like(x_in)

    denoiser = CFGDenoiser(model_fn, table, positive={}, prediction_type="lcm")
    sigmas = get_sigmas("normal", 6, table)
    x = torch.randn(1, 4, 4, 4, generator=torch.Generator().manual_seed(0)) * sigmas[0]
    noise = SeededNoise([1])
    noise.initial(x.shape, "cpu", torch.float32)
    out = sample("lcm", denoiser, x, sigmas, noise_sampler=noise)
    assert torch.isfinite(out).all()
    assert len(timesteps) == 6 and timesteps[0] == 999.0
    assert all(t in {19.0 + 20 * k for k in range(50)} for t in timesteps)


# -- the node ------------------------------------------------------------------------------------------------------------
def test_node_offers_comfyui_choices_in_order():
    from nodes.sd.loaders import ModelSamplingDiscrete

    assert [(spec.name, spec.type) for spec in ModelSamplingDiscrete.INPUTS] == [
        ("model", "MODEL"), ("sampling", "STRING"), ("zsnr", "BOOLEAN")]
    assert list(ModelSamplingDiscrete.INPUTS[1].choices) == ["eps", "v_prediction", "lcm", "x0", "img_to_img"]
    assert ModelSamplingDiscrete.INPUTS[2].default is False


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sampling_modes_models")
    tiny_models.write_tiny_single_file(root / "checkpoints" / "tiny.safetensors", seed=0)
    return root


@pytest.mark.slow
def test_lcm_mode_samples_the_tiny_model_with_the_lcm_sampler(models_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(folders, "_override", models_dir)
    executor = Executor(create_registry(), options=RunOptions(output_dir=tmp_path / "out", device="cpu", models_dir=models_dir))
    g = Graph()
    g.add_node("CheckpointLoaderSimple", {"ckpt_name": "tiny.safetensors"}, id="4")
    g.add_node("EmptyLatentImage", {"width": 64, "height": 64, "batch_size": 1}, id="5")
    g.add_node("CLIPTextEncode", {"text": "a red cube"}, id="6")
    g.add_node("CLIPTextEncode", {"text": "blurry"}, id="7")
    g.connect("4", 1, "6", "clip")
    g.connect("4", 1, "7", "clip")
    for sampling, (patch_id, sampler_id) in {"eps": ("40", "41"), "lcm": ("42", "43")}.items():
        g.add_node("ModelSamplingDiscrete", {"sampling": sampling, "zsnr": False}, id=patch_id)
        g.add_node("KSampler", {"seed": 3, "steps": 3, "cfg": 1.0, "sampler_name": "lcm", "scheduler": "sgm_uniform",
                                "denoise": 1.0}, id=sampler_id)
        g.connect("4", 0, patch_id, "model")
        g.connect(patch_id, 0, sampler_id, "model")
        g.connect("6", 0, sampler_id, "positive")
        g.connect("7", 0, sampler_id, "negative")
        g.connect("5", 0, sampler_id, "latent_image")

    loaded = executor.run(g, ["4"])
    assert loaded.ok
    unet = loaded.outputs["4"][0].unet
    runs: dict[str, Any] = {}
    for sampler_id in ("41", "43"):
        timesteps: list[float] = []
        hook = unet.register_forward_pre_hook(lambda module, args, seen=timesteps: seen.extend(args[1].reshape(-1).tolist()))
        try:
            result = executor.run(g, [sampler_id])
        finally:
            hook.remove()
        assert result.ok, {n: r.error for n, r in result.nodes.items() if r.error}
        runs[sampler_id] = (result.outputs[sampler_id][0]["samples"], timesteps)
    (eps, eps_steps), (lcm, lcm_steps) = runs["41"], runs["43"]
    assert lcm.shape == (1, 4, 8, 8) and torch.isfinite(lcm).all()
    assert not torch.allclose(lcm, eps, atol=1e-4)
    # ComfyUI's sgm_uniform on the distilled table: timesteps 999, 672.3, 345.7, each snapped to a distilled step
    assert lcm_steps == [999.0, 679.0, 339.0]
    assert len(eps_steps) == 3 and eps_steps[0] == pytest.approx(999.0, abs=0.01) and eps_steps != lcm_steps


# -- ImageQuantize's ordered dither -----------------------------------------------------------------------------------------
def _bayer_index(order: int) -> np.ndarray:
    """The classic Bayer index matrix 0..order²-1, built by its textbook recursion."""
    index = np.zeros((1, 1), dtype=np.int64)
    while index.shape[0] < order:
        index = np.block([[4 * index, 4 * index + 2], [4 * index + 3, 4 * index + 1]])
    return index


@pytest.mark.parametrize("order", [2, 4, 8, 16])
def test_threshold_map_is_the_bayer_matrix_centred(order):
    q = order * order
    torch.testing.assert_close(torch.from_numpy(bayer_threshold_map(order)),
                               torch.from_numpy(((_bayer_index(order) + 0.5) / q - 0.5).astype(np.float32)))


def _black_and_white() -> Image.Image:
    palette = Image.new("P", (1, 1))
    palette.putpalette([0, 0, 0, 255, 255, 255])
    return palette


@pytest.mark.parametrize("order", [2, 4, 8, 16])
@pytest.mark.parametrize("grey", [128, 64])
def test_bayer_dither_of_flat_grey_is_the_threshold_pattern(order, grey):
    size = 32
    picture = Image.new("RGB", (size, size), (grey, grey, grey))
    out = np.asarray(bayer_dither(picture, _black_and_white(), order).convert("RGB"))
    assert {tuple(p) for p in out.reshape(-1, 3).tolist()} <= {(0, 0, 0), (255, 255, 255)}
    # By hand: the pixel moves by 2·256/2 · (index + 0.5) / order² - 128 + 0.5, is cut to an integer,
    # then takes the nearer of black and white.
    index = np.tile(_bayer_index(order), (size // order, size // order))
    moved = np.floor(np.clip(grey + 256 * ((index + 0.5) / order**2 - 0.5) + 0.5, 0, 255))
    expected = np.where(moved >= 128, 255, 0)
    assert np.array_equal(out[..., 0], expected)
    white = (out[..., 0] == 255).mean()
    assert abs(white - grey / 255) < 1.5 / order**2 + 0.01  # the pattern's coverage follows the grey level


@pytest.fixture
def executor(tmp_path: Path) -> Executor:
    from tensor_sources import ImageSource

    registry = create_registry()
    registry.register(ImageSource, pack="t")
    return Executor(registry, options=RunOptions(output_dir=tmp_path / "out", device="cpu"))


def _quantize(executor: Executor, image: torch.Tensor, colors: int, dither: str) -> torch.Tensor:
    from tensor_sources import source

    graph = Graph()
    node = graph.add_node("ImageQuantize", {"colors": colors, "dither": dither}, id="node")
    graph.connect(source(graph, image), 0, node.id, "image")
    result = executor.run(graph, [node.id])
    assert result.ok, [(r.node_id, r.error or r.reason) for r in result.nodes.values()]
    return result.outputs["node"][0]


@pytest.mark.parametrize("dither", ["bayer-2", "bayer-4", "bayer-8", "bayer-16"])
def test_image_quantize_bayer_gives_only_palette_colours(executor, dither):
    from studio.imaging import tensor_to_pil

    generator = torch.Generator().manual_seed(5)
    image = torch.randint(0, 65, (1, 20, 20, 3), generator=generator).float() / 64
    out = _quantize(executor, image, 6, dither)
    assert out.shape == image.shape
    palette = tensor_to_pil(image[0]).quantize(colors=6, dither=Image.Dither.NONE).getpalette()
    allowed = {tuple(palette[i:i + 3]) for i in range(0, len(palette), 3)}
    got = {tuple(p) for p in (out[0] * 255).round().to(torch.int64).reshape(-1, 3).tolist()}
    assert got <= allowed and len(got) > 1
    assert not torch.equal(out, _quantize(executor, image, 6, "none"))


def test_image_quantize_offers_comfyui_dithers():
    from nodes.sd.masks import ImageQuantize

    dither = next(spec for spec in ImageQuantize.INPUTS if spec.name == "dither")
    assert list(dither.choices) == ["none", "floyd-steinberg", "bayer-2", "bayer-4", "bayer-8", "bayer-16"]
