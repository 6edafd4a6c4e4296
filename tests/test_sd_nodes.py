"""The Stable Diffusion nodes run for real through ``studio.engine.Executor`` on a tiny seeded SD 1 model.

The tiny checkpoint (``tests/tiny_models.py``) has the real architecture with random weights, so the
pictures are noise; what these tests check is the behaviour users rely on: seeds, batches, denoise,
split sampling, every sampler, cancellation, progress, caching and the model manager's load count.
Pictures are 64×64 (8×8 latents) and runs take 2–4 steps, to stay fast on a CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tiny_models  # tests/ is on sys.path (pytest's default import mode)
import torch
from PIL import Image
from safetensors.torch import save_file

from nodes.sd.sampling import SAMPLER_NAMES, SCHEDULER_NAMES
from studio.core.graph import Graph
from studio.engine import CancelToken, Executor, RunOptions
from studio.engine.events import NodeProgress
from studio.models import folders
from studio.models.convert import vae_to_original
from studio.models.memory import model_manager
from studio.plugins import create_registry

CKPT = "tiny.safetensors"
PROMPT = "a red cube on a wooden table"
NEGATIVE = "blurry"


# -- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder with the tiny checkpoint and its VAE on its own, in the diffusers and the
    original layout."""
    root = tmp_path_factory.mktemp("sd_nodes_models")
    tiny_models.write_tiny_single_file(root / "checkpoints" / CKPT, seed=0)
    parts = tiny_models.build_tiny_components(seed=0)
    vae_state = {k: v.contiguous() for k, v in parts.vae.state_dict().items()}
    (root / "vae").mkdir()
    save_file(vae_state, str(root / "vae" / "tiny_vae_diffusers.safetensors"))
    original = {k: v.contiguous() for k, v in vae_to_original(vae_state).items()}
    save_file(original, str(root / "vae" / "tiny_vae_original.safetensors"))
    return root


@pytest.fixture(autouse=True)
def _models_folder(models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Model choices (checked before a run) come from the process-wide models folder, not from
    ``RunOptions.models_dir``: point it here too (as ``nuance run`` does), restored after the test."""
    monkeypatch.setattr(folders, "_override", models_dir)


@pytest.fixture(scope="module")
def shared_executor(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Executor:
    """One executor (one output cache) for the tests that only change the sampler's inputs."""
    out = tmp_path_factory.mktemp("sd_nodes_out")
    return Executor(create_registry(), options=RunOptions(output_dir=out, device="cpu", models_dir=models_dir))


@pytest.fixture
def fresh_manager():
    """Start without loaded models (so the first use loads; ``loads`` counts up over the process's
    life, so tests compare differences) and free them afterwards."""
    model_manager().free_memory()
    yield model_manager()
    model_manager().free_memory()


def new_executor(models_dir: Path, tmp_path: Path) -> Executor:
    return Executor(create_registry(), options=RunOptions(output_dir=tmp_path / "out", device="cpu", models_dir=models_dir))


@pytest.fixture
def input_png(tmp_path: Path) -> Path:
    """A smooth, colourful 64×64 picture (gradients and a disc), so the VAE sees structure."""
    y, x = np.mgrid[0:64, 0:64].astype(np.float32) / 63
    disc = ((x - 0.6) ** 2 + (y - 0.4) ** 2 < 0.06).astype(np.float32)
    rgb = np.stack([x, y * (1 - disc) + disc, 1 - x * y], axis=-1)
    path = tmp_path / "input.png"
    Image.fromarray((rgb * 255).round().astype(np.uint8)).save(path)
    return path


# -- graph building -----------------------------------------------------------------------------
def txt2img(*, ckpt: str = CKPT, seed: int = 0, steps: int = 2, cfg: float = 7.0, sampler: str = "euler",
            scheduler: str = "normal", denoise: float = 1.0, batch: int = 1, size: int = 64, positive: str = PROMPT,
            negative: str = NEGATIVE) -> Graph:
    """ComfyUI's default graph with the bundled workflows' ids: 4 loader, 5 empty latent, 6/7 prompts,
    3 KSampler, 8 VAEDecode (no saver: tests ask for node outputs directly)."""
    g = Graph()
    g.add_node("CheckpointLoaderSimple", {"ckpt_name": ckpt}, id="4")
    g.add_node("EmptyLatentImage", {"width": size, "height": size, "batch_size": batch}, id="5")
    g.add_node("CLIPTextEncode", {"text": positive}, id="6")
    g.add_node("CLIPTextEncode", {"text": negative}, id="7")
    g.add_node("KSampler", {"seed": seed, "steps": steps, "cfg": cfg, "sampler_name": sampler, "scheduler": scheduler,
                            "denoise": denoise}, id="3")
    g.add_node("VAEDecode", {}, id="8")
    g.connect("4", 1, "6", "clip")
    g.connect("4", 1, "7", "clip")
    g.connect("4", 0, "3", "model")
    g.connect("6", 0, "3", "positive")
    g.connect("7", 0, "3", "negative")
    g.connect("5", 0, "3", "latent_image")
    g.connect("3", 0, "8", "samples")
    g.connect("4", 2, "8", "vae")
    return g


def img2img(image: Path, **kwargs: Any) -> Graph:
    """txt2img with 10 LoadImage → 11 VAEEncode in place of the empty latent (as img2img.json)."""
    g = txt2img(**kwargs)
    g.remove_node("5")
    g.add_node("LoadImage", {"image": str(image)}, id="10")
    g.add_node("VAEEncode", {}, id="11")
    g.connect("10", 0, "11", "pixels")
    g.connect("4", 2, "11", "vae")
    g.connect("11", 0, "3", "latent_image")
    return g


def run(executor: Executor, graph: Graph, *targets: str, **kwargs: Any) -> dict[str, tuple[Any, ...]]:
    result = executor.run(graph, list(targets), **kwargs)
    assert result.ok, {n: r.error for n, r in result.nodes.items() if r.error}
    return result.outputs


def samples(outputs: dict[str, tuple[Any, ...]], node_id: str) -> torch.Tensor:
    return outputs[node_id][0]["samples"]


def assert_close_scaled(actual: torch.Tensor, expected: torch.Tensor, rel: float = 1e-5) -> None:
    """Equal to within ``rel`` of the expected tensor's largest magnitude."""
    assert actual.shape == expected.shape
    scale = expected.abs().max().item()
    assert scale > 0
    torch.testing.assert_close(actual, expected, atol=rel * scale, rtol=0)


def statuses(result: Any) -> dict[str, str]:
    return {node_id: record.status for node_id, record in result.nodes.items()}


# -- seeds and batches ----------------------------------------------------------------------------
@pytest.mark.slow
def test_same_seed_same_picture_with_a_fresh_executor_and_reloaded_model(models_dir, tmp_path, fresh_manager):
    first = run(new_executor(models_dir, tmp_path), txt2img(seed=11), "3", "8")
    fresh_manager.free_memory()  # the second run loads the checkpoint from disk again
    second = run(new_executor(models_dir, tmp_path), txt2img(seed=11), "3", "8")
    other = run(new_executor(models_dir, tmp_path), txt2img(seed=12), "3", "8")

    assert torch.equal(samples(first, "3"), samples(second, "3"))
    assert torch.equal(first["8"][0], second["8"][0])
    assert first["8"][0].shape == (1, 64, 64, 3)
    assert not torch.allclose(samples(first, "3"), samples(other, "3"), atol=1e-3)
    assert (first["8"][0] - other["8"][0]).abs().max() > 0.05


@pytest.mark.slow
def test_batch_item_i_is_the_single_picture_of_seed_plus_i(shared_executor):
    batch = samples(run(shared_executor, txt2img(seed=40, batch=2), "3"), "3")
    first = samples(run(shared_executor, txt2img(seed=40), "3"), "3")
    second = samples(run(shared_executor, txt2img(seed=41), "3"), "3")

    assert batch.shape == (2, 4, 8, 8)
    # Equal up to float rounding (batched convolutions sum in another order; the random tiny
    # model's latents run into the hundreds, so the tolerance is relative to their size).
    assert_close_scaled(batch[0], first[0])
    assert_close_scaled(batch[1], second[0])
    assert (batch[0] - batch[1]).abs().max() > 0.1 * batch.abs().max()


# -- img2img and denoise --------------------------------------------------------------------------
@pytest.mark.slow
def test_denoise_zero_returns_the_encoded_input(shared_executor, input_png):
    graph = img2img(input_png, denoise=0.0, steps=3)
    out = run(shared_executor, graph, "3", "8", "11")
    encoded = samples(out, "11")
    assert encoded.shape == (1, 4, 8, 8)
    assert torch.equal(samples(out, "3"), encoded)

    # The decoded picture is the VAE round trip of the input: encode then decode, no sampler.
    round_trip = Graph()
    round_trip.add_node("CheckpointLoaderSimple", {"ckpt_name": CKPT}, id="4")
    round_trip.add_node("LoadImage", {"image": str(input_png)}, id="10")
    round_trip.add_node("VAEEncode", {}, id="11")
    round_trip.add_node("VAEDecode", {}, id="8")
    round_trip.connect("10", 0, "11", "pixels")
    round_trip.connect("4", 2, "11", "vae")
    round_trip.connect("11", 0, "8", "samples")
    round_trip.connect("4", 2, "8", "vae")
    expected = run(shared_executor, round_trip, "8")["8"][0]
    assert out["8"][0].shape == expected.shape == (1, 64, 64, 3)
    torch.testing.assert_close(out["8"][0], expected, atol=1e-6, rtol=0)


@pytest.mark.slow
def test_lower_denoise_stays_closer_to_the_input(shared_executor, input_png):
    distances = {}
    for denoise in (0.2, 0.6, 1.0):
        out = run(shared_executor, img2img(input_png, denoise=denoise, steps=3, seed=5), "3", "11")
        distances[denoise] = (samples(out, "3") - samples(out, "11")).norm().item()
    assert 0 < distances[0.2] < distances[1.0], distances
    assert distances[0.2] < distances[0.6], distances


# -- KSamplerAdvanced -----------------------------------------------------------------------------
def _advanced(g: Graph, node_id: str, latent_from: str, **inputs: Any) -> None:
    values = {"add_noise": "enable", "noise_seed": 9, "steps": 4, "cfg": 7.0, "sampler_name": "euler",
              "scheduler": "normal", "start_at_step": 0, "end_at_step": 10000, "return_with_leftover_noise": "disable"}
    g.add_node("KSamplerAdvanced", {**values, **inputs}, id=node_id)
    g.connect("4", 0, node_id, "model")
    g.connect("6", 0, node_id, "positive")
    g.connect("7", 0, node_id, "negative")
    g.connect(latent_from, 0, node_id, "latent_image")


@pytest.mark.slow
@pytest.mark.parametrize("split_at", [1, 2])
def test_advanced_sampler_split_in_two_equals_one_run(shared_executor, split_at):
    g = txt2img(seed=9, steps=4)
    _advanced(g, "20", "5")  # steps 0..4 in one go
    _advanced(g, "21", "5", end_at_step=split_at, return_with_leftover_noise="enable")
    _advanced(g, "22", "21", add_noise="disable", start_at_step=split_at)
    out = run(shared_executor, g, "3", "20", "21", "22")

    whole, first_half, second_half = samples(out, "20"), samples(out, "21"), samples(out, "22")
    assert_close_scaled(second_half, whole)
    # The first half stopped early with its noise left in: far from the finished latent.
    assert (first_half - whole).abs().max() > 1e-3 * whole.abs().max()
    # With every step and fresh noise, the advanced sampler is the plain KSampler.
    assert_close_scaled(samples(out, "3"), whole)


@pytest.mark.slow
@pytest.mark.parametrize("start", [4, 7])
def test_advanced_sampler_starting_at_or_after_the_last_step_returns_the_input(shared_executor, input_png, start):
    g = img2img(input_png)
    _advanced(g, "20", "11", start_at_step=start)
    out = run(shared_executor, g, "11", "20")
    assert torch.equal(samples(out, "20"), samples(out, "11"))


# -- every sampler and scheduler --------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("scheduler", ["normal", "karras"])
@pytest.mark.parametrize("sampler", SAMPLER_NAMES)
def test_every_sampler_runs_two_steps(shared_executor, sampler, scheduler):
    latent = samples(run(shared_executor, txt2img(sampler=sampler, scheduler=scheduler, steps=2, seed=3), "3"), "3")
    assert latent.shape == (1, 4, 8, 8)
    assert torch.isfinite(latent).all()
    assert latent.abs().max() > 0  # it did sample (the empty latent is all zeros)


@pytest.mark.slow
@pytest.mark.parametrize("scheduler", [s for s in SCHEDULER_NAMES if s not in ("normal", "karras")])
def test_every_scheduler_runs_two_steps(shared_executor, scheduler):
    latent = samples(run(shared_executor, txt2img(scheduler=scheduler, steps=2, seed=3), "3"), "3")
    assert torch.isfinite(latent).all()
    assert latent.abs().max() > 0


# -- cancellation and progress ----------------------------------------------------------------------
@pytest.mark.slow
def test_cancel_on_the_first_sampler_step_stops_within_a_step_and_the_executor_runs_again(shared_executor, tmp_path):
    loader = Graph()
    loader.add_node("CheckpointLoaderSimple", {"ckpt_name": CKPT}, id="4")
    unet = run(shared_executor, loader, "4")["4"][0].unet
    calls: list[int] = []
    hook = unet.register_forward_pre_hook(lambda module, args: calls.append(1))
    try:
        graph = txt2img(seed=77, steps=8)
        graph.add_node("SaveImage", {"filename_prefix": "cancelled"}, id="9")
        graph.connect("8", 0, "9", "images")
        token = CancelToken()
        progress: list[NodeProgress] = []

        def listener(event: Any) -> None:
            if isinstance(event, NodeProgress) and event.node_type == "KSampler":
                progress.append(event)
                token.cancel()

        result = shared_executor.run(graph, ["9"], listener=listener, cancel=token)
        assert result.status == "cancelled"
        assert len(progress) == 1 and progress[0].value == 1
        assert len(calls) == 1  # euler: one UNet call per step; none after the cancel (8 were asked for)
        assert result.nodes["3"].status == "skipped"
        assert result.nodes["8"].status == result.nodes["9"].status == "skipped"
        assert result.files == []

        calls.clear()
        again = shared_executor.run(graph, ["9"])
        assert again.ok
        assert again.nodes["3"].status == "executed"  # a cancelled sampler left nothing in the cache
        assert len(calls) == 8
        assert len(again.files) == 1 and Path(again.files[0]).is_file()
    finally:
        hook.remove()


@pytest.mark.slow
def test_sampler_progress_has_step_total_and_an_rgb_preview(shared_executor):
    events: list[NodeProgress] = []

    def listener(event: Any) -> None:
        if isinstance(event, NodeProgress) and event.node_id == "3":
            events.append(event)

    result = shared_executor.run(txt2img(seed=123, steps=3), ["3"], listener=listener)
    assert result.ok
    assert [(e.value, e.total) for e in events] == [(1, 3), (2, 3), (3, 3)]
    for event in events:
        assert event.node_type == "KSampler"
        preview = event.preview
        assert isinstance(preview, np.ndarray)
        assert preview.dtype == np.uint8
        assert preview.ndim == 3 and preview.shape[-1] == 3 and preview.shape[0] >= 8 and preview.shape[1] >= 8
    assert not np.array_equal(events[0].preview, events[-1].preview)


# -- model options ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_clip_set_last_layer(shared_executor):
    g = Graph()
    g.add_node("CheckpointLoaderSimple", {"ckpt_name": CKPT}, id="4")
    g.add_node("CLIPTextEncode", {"text": PROMPT}, id="6")
    g.connect("4", 1, "6", "clip")
    for layer, (skip_id, encode_id) in {-1: ("30", "31"), -2: ("32", "33")}.items():
        g.add_node("CLIPSetLastLayer", {"stop_at_clip_layer": layer}, id=skip_id)
        g.add_node("CLIPTextEncode", {"text": PROMPT}, id=encode_id)
        g.connect("4", 1, skip_id, "clip")
        g.connect(skip_id, 0, encode_id, "clip")
    out = run(shared_executor, g, "6", "31", "33")
    plain, last, penultimate = (out[i][0][0][0] for i in ("6", "31", "33"))
    assert plain.shape == (1, 77, 32)
    torch.testing.assert_close(last, plain)
    assert penultimate.shape == plain.shape
    assert not torch.allclose(penultimate, plain, atol=1e-3)


@pytest.mark.slow
def test_model_sampling_discrete_v_prediction_changes_the_result(shared_executor):
    g = txt2img(seed=21, steps=2)
    for sampling, (patch_id, sampler_id) in {"eps": ("40", "41"), "v_prediction": ("42", "43")}.items():
        g.add_node("ModelSamplingDiscrete", {"sampling": sampling, "zsnr": False}, id=patch_id)
        g.connect("4", 0, patch_id, "model")
        g.add_node("KSampler", dict(g.nodes["3"].inputs), id=sampler_id)
        g.connect(patch_id, 0, sampler_id, "model")
        g.connect("6", 0, sampler_id, "positive")
        g.connect("7", 0, sampler_id, "negative")
        g.connect("5", 0, sampler_id, "latent_image")
    out = run(shared_executor, g, "3", "41", "43")
    torch.testing.assert_close(samples(out, "41"), samples(out, "3"))  # the tiny model is eps already
    assert not torch.allclose(samples(out, "43"), samples(out, "3"), atol=1e-3)
    assert torch.isfinite(samples(out, "43")).all()


@pytest.mark.slow
def test_changing_the_prompt_reruns_only_its_encoder_and_what_follows(models_dir, tmp_path, fresh_manager):
    executor = new_executor(models_dir, tmp_path)
    graph = txt2img(seed=8)
    loads = fresh_manager.loads
    first = executor.run(graph, ["8"])
    assert first.ok and fresh_manager.loads == loads + 1
    assert set(statuses(first).values()) == {"executed"}

    graph.set_input("6", "text", "a blue sphere in the snow")
    second = executor.run(graph, ["8"])
    assert second.ok
    assert fresh_manager.loads == loads + 1  # the checkpoint was not loaded again
    assert statuses(second) == {"4": "cached", "5": "cached", "7": "cached",
                                "6": "executed", "3": "executed", "8": "executed"}
    assert not torch.equal(first.outputs["8"][0], second.outputs["8"][0])


# -- VAE --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_tiled_vae_with_one_tile_equals_the_whole_vae(shared_executor, input_png):
    g = Graph()
    g.add_node("CheckpointLoaderSimple", {"ckpt_name": CKPT}, id="4")
    g.add_node("LoadImage", {"image": str(input_png)}, id="10")
    g.add_node("VAEEncode", {}, id="11")
    g.add_node("VAEEncodeTiled", {"tile_size": 64, "overlap": 64}, id="12")
    g.add_node("VAEDecode", {}, id="13")
    g.add_node("VAEDecodeTiled", {"tile_size": 64, "overlap": 64}, id="14")
    for node_id, source in (("11", "10"), ("12", "10")):
        g.connect(source, 0, node_id, "pixels")
        g.connect("4", 2, node_id, "vae")
    for node_id in ("13", "14"):
        g.connect("11", 0, node_id, "samples")
        g.connect("4", 2, node_id, "vae")
    out = run(shared_executor, g, "11", "12", "13", "14")
    assert samples(out, "11").shape == (1, 4, 8, 8)
    torch.testing.assert_close(samples(out, "12"), samples(out, "11"), atol=1e-5, rtol=1e-5)
    assert out["13"][0].shape == (1, 64, 64, 3)
    torch.testing.assert_close(out["14"][0], out["13"][0], atol=1e-5, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("vae_name", ["tiny_vae_diffusers.safetensors", "tiny_vae_original.safetensors"])
def test_vae_loader_decodes_like_the_checkpoints_own_vae(shared_executor, vae_name):
    g = txt2img(seed=2)
    g.add_node("VAELoader", {"vae_name": vae_name}, id="50")
    g.add_node("VAEDecode", {}, id="51")
    g.connect("3", 0, "51", "samples")
    g.connect("50", 0, "51", "vae")
    out = run(shared_executor, g, "8", "51")
    torch.testing.assert_close(out["51"][0], out["8"][0], atol=1e-5, rtol=1e-5)


# -- latents -----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_hires_fix_upscale_latent_then_sample_at_half_denoise(shared_executor):
    g = txt2img(seed=4)
    g.add_node("LatentUpscaleBy", {"upscale_method": "bislerp", "scale_by": 1.5}, id="60")
    g.add_node("KSampler", {**g.nodes["3"].inputs, "denoise": 0.5}, id="61")
    g.add_node("VAEDecode", {}, id="62")
    g.connect("3", 0, "60", "samples")
    g.connect("4", 0, "61", "model")
    g.connect("6", 0, "61", "positive")
    g.connect("7", 0, "61", "negative")
    g.connect("60", 0, "61", "latent_image")
    g.connect("61", 0, "62", "samples")
    g.connect("4", 2, "62", "vae")
    out = run(shared_executor, g, "60", "61", "62")
    upscaled, refined = samples(out, "60"), samples(out, "61")
    assert upscaled.shape == refined.shape == (1, 4, 12, 12)
    assert torch.isfinite(refined).all()
    assert not torch.allclose(refined, upscaled, atol=1e-3)  # the second pass changed it
    image = out["62"][0]
    assert image.shape == (1, 96, 96, 3)
    assert torch.isfinite(image).all() and 0 <= image.min() and image.max() <= 1
