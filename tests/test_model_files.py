"""Model files: safetensors headers read by hand, damaged files caught early, the pickle rule,
and SHA-256 hashes remembered between runs."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import save_file

from studio.core.errors import NuanceError
from studio.core.paths import data_dir
from studio.models import files
from studio.models.files import (
    ModelFileError,
    cached_sha256,
    load_state_dict,
    pickle_allowed,
    read_safetensors_header,
    sha256_file,
    short_hash,
)
from studio.models.folders import settings_path

REPO = Path(__file__).resolve().parent.parent


def small_model(path: Path, metadata: dict[str, str] | None = None) -> dict[str, torch.Tensor]:
    tensors = {
        "unet.weight": torch.arange(12, dtype=torch.float32).reshape(3, 4),
        "unet.bias": torch.ones(3, dtype=torch.float16),
        "text.ids": torch.tensor([1, 2, 3, 4, 5], dtype=torch.int64),
    }
    save_file(tensors, str(path), metadata=metadata)
    return tensors


def raw_safetensors(path: Path, header: object, data: bytes = b"") -> Path:
    encoded = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + data)
    return path


def write_settings(text: str) -> None:
    settings_path().parent.mkdir(parents=True, exist_ok=True)
    settings_path().write_text(text, encoding="utf-8")


# -- safetensors headers ----------------------------------------------------------------------------
def test_header_lists_tensors_shapes_dtypes_and_metadata(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    small_model(path, metadata={"modelspec.title": "Dream", "ss_network_dim": "32"})
    header = read_safetensors_header(path)
    assert header.shapes() == {"unet.weight": (3, 4), "unet.bias": (3,), "text.ids": (5,)}
    assert header.tensors["unet.weight"].dtype == "F32"
    assert header.tensors["unet.bias"].dtype == "F16"
    assert header.tensors["text.ids"].dtype == "I64"
    assert header.metadata == {"modelspec.title": "Dream", "ss_network_dim": "32"}


def test_header_without_metadata_has_empty_metadata(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    small_model(path)
    assert read_safetensors_header(path).metadata == {}


def test_reading_a_header_does_not_import_torch(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    small_model(path)
    code = ("import sys; from studio.models.files import read_safetensors_header; "
            f"h = read_safetensors_header({str(path)!r}); "
            "assert h.shapes()['unet.weight'] == (3, 4); "
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_truncated_data_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    small_model(path)
    path.write_bytes(path.read_bytes()[:-10])  # an interrupted download
    with pytest.raises(ModelFileError, match="truncated") as info:
        read_safetensors_header(path)
    assert "model.safetensors" in str(info.value)
    assert "download" in str(info.value)


def test_file_cut_inside_the_header_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    small_model(path)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ModelFileError, match="not a valid safetensors file"):
        read_safetensors_header(path)


@pytest.mark.parametrize("content", [b"", b"\x01\x02\x03"])
def test_empty_or_tiny_file_is_detected(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match="truncated or empty"):
        read_safetensors_header(path)


def test_huge_header_length_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(struct.pack("<Q", 2**60) + b"{}")
    with pytest.raises(ModelFileError, match="not a valid safetensors file"):
        read_safetensors_header(path)


def test_other_format_renamed_to_safetensors_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    torch.save({"w": torch.zeros(2)}, path)  # a zip-based torch file with the wrong suffix
    with pytest.raises(ModelFileError):
        read_safetensors_header(path)


@pytest.mark.parametrize("header", [b"\xff\xfe\x00garbage", b"{not json", b"[1, 2, 3]", b'"text"'])
def test_garbage_header_is_corrupt(tmp_path: Path, header: bytes) -> None:
    path = raw_safetensors(tmp_path / "model.safetensors", header)
    with pytest.raises(ModelFileError, match="corrupt"):
        read_safetensors_header(path)


@pytest.mark.parametrize("entry", [
    {"shape": [1], "data_offsets": [0, 4]},                        # no dtype
    {"dtype": "F32", "shape": [1]},                                # no offsets
    {"dtype": "F32", "shape": "one", "data_offsets": [0, 4]},      # shape not numbers
    {"dtype": "F32", "shape": [1], "data_offsets": [0]},           # one offset
    [1, 2, 3],                                                     # not an object
    None,
])
def test_corrupt_tensor_entry_is_reported_by_name(tmp_path: Path, entry: object) -> None:
    path = raw_safetensors(tmp_path / "model.safetensors", {"layer.weight": entry}, b"\0" * 4)
    with pytest.raises(ModelFileError, match=r"layer\.weight"):
        read_safetensors_header(path)


def test_non_numeric_offsets_are_a_model_file_error(tmp_path: Path) -> None:
    header = {"layer.weight": {"dtype": "F32", "shape": [1], "data_offsets": ["0", "4"]}}
    path = raw_safetensors(tmp_path / "model.safetensors", header, b"\0" * 4)
    with pytest.raises(ModelFileError, match=r"layer\.weight"):
        read_safetensors_header(path)


def test_tensor_size_must_match_its_shape(tmp_path: Path) -> None:
    header = {"layer.weight": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 8]}}
    path = raw_safetensors(tmp_path / "model.safetensors", header, b"\0" * 8)
    with pytest.raises(ModelFileError, match="wrong size"):
        read_safetensors_header(path)


def test_offsets_past_the_end_are_truncation(tmp_path: Path) -> None:
    header = {"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
              "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}
    path = raw_safetensors(tmp_path / "model.safetensors", header, b"\0" * 8)
    with pytest.raises(ModelFileError, match=r"tensor 'b'.*truncated|truncated.*tensor 'b'"):
        read_safetensors_header(path)


@pytest.mark.parametrize("entry", [
    {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]},     # reversed
    {"dtype": "F32", "shape": [1], "data_offsets": [-8, -4]},   # before the data section
    {"dtype": "F32", "shape": [-1, -1], "data_offsets": [0, 4]},  # negative dimensions
])
def test_impossible_offsets_or_shapes_are_refused(tmp_path: Path, entry: dict) -> None:
    path = raw_safetensors(tmp_path / "model.safetensors", {"a": entry}, b"\0" * 8)
    with pytest.raises(ModelFileError):
        read_safetensors_header(path)


def test_missing_file_and_folder_are_model_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="no such model file"):
        read_safetensors_header(tmp_path / "absent.safetensors")
    (tmp_path / "folder.safetensors").mkdir()
    with pytest.raises(ModelFileError, match="is a folder"):
        read_safetensors_header(tmp_path / "folder.safetensors")


def test_model_file_error_is_a_nuance_error() -> None:
    assert issubclass(ModelFileError, NuanceError)


# -- loading tensors ----------------------------------------------------------------------------------
def test_load_state_dict_round_trips_safetensors(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    saved = small_model(path)
    loaded = load_state_dict(path)
    assert set(loaded) == set(saved)
    for name, tensor in saved.items():
        assert loaded[name].dtype == tensor.dtype
        assert torch.equal(loaded[name], tensor)


def test_load_state_dict_reads_only_the_keys_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    saved = small_model(path)
    loaded = load_state_dict(path, keys=["unet.bias", "not.there"])
    assert list(loaded) == ["unet.bias"]
    assert torch.equal(loaded["unet.bias"], saved["unet.bias"])


def test_load_state_dict_refuses_a_truncated_file_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    small_model(path)
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(ModelFileError, match="truncated"):
        load_state_dict(path)


# -- the pickle rule ---------------------------------------------------------------------------------------
def make_ckpt(path: Path, nested: bool = False) -> dict[str, torch.Tensor]:
    tensors = {"model.w": torch.arange(6, dtype=torch.float32), "model.b": torch.zeros(2)}
    torch.save({"state_dict": tensors, "global_step": 1000} if nested else tensors, path)
    return tensors


def test_pickle_files_are_refused_by_default(tmp_path: Path) -> None:
    path = tmp_path / "old-model.ckpt"
    make_ckpt(path)
    assert not pickle_allowed()
    with pytest.raises(ModelFileError) as info:
        load_state_dict(path)
    message = str(info.value)
    assert "old-model.ckpt" in message
    assert "pickle" in message
    assert ".safetensors" in message
    assert "allow_pickle" in message
    assert "NUANCE_ALLOW_PICKLE" in message


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".bin", ".CKPT"])
def test_every_pickle_suffix_is_refused(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"weights{suffix}"
    make_ckpt(path)
    with pytest.raises(ModelFileError, match="refused"):
        load_state_dict(path)


@pytest.mark.parametrize("value", ["1", "true", "YES"])
def test_environment_allows_weights_only_pickle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("NUANCE_ALLOW_PICKLE", value)
    path = tmp_path / "old-model.ckpt"
    saved = make_ckpt(path)
    assert pickle_allowed()
    loaded = load_state_dict(path)
    assert set(loaded) == set(saved)
    assert torch.equal(loaded["model.w"], saved["model.w"])


@pytest.mark.parametrize("value", ["0", "false", ""])
def test_environment_values_that_do_not_allow_pickle(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("NUANCE_ALLOW_PICKLE", value)
    assert not pickle_allowed()


def test_settings_allow_pickle(tmp_path: Path) -> None:
    path = tmp_path / "old-model.ckpt"
    saved = make_ckpt(path, nested=True)
    write_settings("[models]\nallow_pickle = true\n")
    assert pickle_allowed()
    loaded = load_state_dict(path)  # the "state_dict" wrapper of old checkpoints is unwrapped
    assert set(loaded) == set(saved)
    assert torch.equal(loaded["model.w"], saved["model.w"])


def test_settings_allow_pickle_false_refuses(tmp_path: Path) -> None:
    write_settings("[models]\nallow_pickle = false\n")
    assert not pickle_allowed()


def test_settings_allow_pickle_as_the_string_false_does_not_allow(tmp_path: Path) -> None:
    """A quoted "false" must never switch the safety rule off."""
    write_settings('[models]\nallow_pickle = "false"\n')
    try:
        allowed = pickle_allowed()
    except NuanceError:
        return  # refusing the setting with a message is fine too
    assert allowed is False


def test_explicit_argument_overrides_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUANCE_ALLOW_PICKLE", "1")
    path = tmp_path / "old-model.pt"
    make_ckpt(path)
    with pytest.raises(ModelFileError, match="refused"):
        load_state_dict(path, allow_pickle=False)
    monkeypatch.delenv("NUANCE_ALLOW_PICKLE")
    assert set(load_state_dict(path, allow_pickle=True)) == {"model.w", "model.b"}


def test_allowed_pickle_keeps_only_tensors_and_requested_keys(tmp_path: Path) -> None:
    path = tmp_path / "mixed.pt"
    torch.save({"w": torch.ones(2), "step": 5, "name": "x", "b": torch.zeros(1)}, path)
    assert set(load_state_dict(path, allow_pickle=True)) == {"w", "b"}
    assert set(load_state_dict(path, allow_pickle=True, keys=["b", "step"])) == {"b"}


class _Payload:
    """Unpickling this runs code: it creates the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_allowed_pickle_still_never_runs_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    torch.save({"w": torch.ones(1), "payload": _Payload(marker)}, path)
    with pytest.raises(ModelFileError, match="weights-only"):
        load_state_dict(path, allow_pickle=True)
    assert not marker.exists()


def test_pickle_without_a_state_dict_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "list.pt"
    torch.save([torch.ones(1)], path)
    with pytest.raises(ModelFileError, match="no state dict"):
        load_state_dict(path, allow_pickle=True)


# -- hashes ----------------------------------------------------------------------------------------------------
def test_sha256_and_short_hash(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    small_model(path)
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    assert sha256_file(path) == expected
    assert short_hash(path) == expected[:10].upper()
    assert len(short_hash(path)) == 10


def test_hash_is_cached_in_the_user_data_folder(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    small_model(path)
    assert cached_sha256(path) is None  # never computed: cached_sha256 does not read the file
    digest = sha256_file(path)
    cache_file = data_dir() / "cache" / "model_hashes.json"
    assert cache_file.is_file()
    assert digest in json.loads(cache_file.read_text(encoding="utf-8")).values()
    assert cached_sha256(path) == digest


def test_hash_is_computed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "model.safetensors"
    small_model(path)
    calls = []

    def counting_sha256():
        calls.append(1)
        return hashlib.sha256()

    monkeypatch.setattr(files, "hashlib", SimpleNamespace(sha256=counting_sha256))
    first = sha256_file(path)
    second = sha256_file(path)
    assert first == second == hashlib.sha256(path.read_bytes()).hexdigest()
    assert len(calls) == 1


def test_changed_file_is_hashed_again(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    small_model(path)
    old = sha256_file(path)
    save_file({"other": torch.ones(7)}, str(path))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    assert cached_sha256(path) is None
    new = sha256_file(path)
    assert new != old
    assert new == hashlib.sha256(path.read_bytes()).hexdigest()
    assert cached_sha256(path) == new


def test_corrupt_hash_cache_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    small_model(path)
    cache_file = data_dir() / "cache" / "model_hashes.json"
    cache_file.parent.mkdir(parents=True)
    cache_file.write_text("{broken", encoding="utf-8")
    assert cached_sha256(path) is None
    assert sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert cached_sha256(path) is not None


def test_cached_sha256_of_a_missing_file_is_none(tmp_path: Path) -> None:
    assert cached_sha256(tmp_path / "absent.safetensors") is None
