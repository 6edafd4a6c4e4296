"""Models folders: which folder is the models folder, the extra search paths (ComfyUI and
AUTOMATIC1111 layouts), listing, and the errors a user sees when a model is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

import studio.core.resources
from studio.core.errors import NuanceError
from studio.core.paths import data_dir
from studio.models import folders
from studio.models.folders import KINDS, ModelFolders, ModelNotFoundError, configure, model_folders, settings_path


@pytest.fixture(autouse=True)
def _no_override(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test leaks a ``configure()`` override into another (monkeypatch restores it)."""
    monkeypatch.setattr(folders, "_override", None)


@pytest.fixture
def no_bundled(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Bundled resources without a models folder, so only the folders a test makes are searched."""
    root = tmp_path / "bundled-resources"
    root.mkdir()
    monkeypatch.setattr(studio.core.resources, "resource_path", lambda *parts: root.joinpath(*parts))
    return root


def write_settings(text: str) -> Path:
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def touch(path: Path, content: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def toml_path(path: Path) -> str:
    return path.as_posix().replace('"', '\\"')


# -- which folder is the models folder ------------------------------------------------------------
def test_default_is_models_under_the_user_data_folder() -> None:
    chosen = model_folders()
    assert chosen.root == data_dir() / "models"
    assert chosen.source == "default"


def test_settings_dir_wins_over_the_default(tmp_path: Path) -> None:
    write_settings(f'[models]\ndir = "{toml_path(tmp_path / "from-settings")}"\n')
    chosen = model_folders()
    assert chosen.root == tmp_path / "from-settings"
    assert chosen.source == "settings.toml"


def test_settings_dir_expands_the_home_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    write_settings('[models]\ndir = "~/AI/models"\n')
    assert model_folders().root == tmp_path / "AI" / "models"


def test_environment_wins_over_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    write_settings(f'[models]\ndir = "{toml_path(tmp_path / "from-settings")}"\n')
    monkeypatch.setenv("NUANCE_MODELS_DIR", str(tmp_path / "from-env"))
    chosen = model_folders()
    assert chosen.root == tmp_path / "from-env"
    assert chosen.source == "NUANCE_MODELS_DIR"


def test_empty_environment_variable_is_ignored(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    write_settings(f'[models]\ndir = "{toml_path(tmp_path / "from-settings")}"\n')
    monkeypatch.setenv("NUANCE_MODELS_DIR", "")
    assert model_folders().root == tmp_path / "from-settings"


def test_configure_wins_over_environment_and_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    write_settings(f'[models]\ndir = "{toml_path(tmp_path / "from-settings")}"\n')
    monkeypatch.setenv("NUANCE_MODELS_DIR", str(tmp_path / "from-env"))
    configure(tmp_path / "from-cli")
    chosen = model_folders()
    assert chosen.root == tmp_path / "from-cli"
    assert chosen.source == "--models-dir"
    configure(None)
    assert model_folders().root == tmp_path / "from-env"


def test_explicit_argument_wins_over_everything(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    write_settings(f'[models]\ndir = "{toml_path(tmp_path / "from-settings")}"\n')
    monkeypatch.setenv("NUANCE_MODELS_DIR", str(tmp_path / "from-env"))
    configure(tmp_path / "from-cli")
    chosen = model_folders(tmp_path / "explicit")
    assert chosen.root == tmp_path / "explicit"
    assert chosen.source == "--models-dir"


def test_broken_settings_file_is_a_clear_error() -> None:
    path = write_settings('[models]\ndir = "unterminated\n')
    with pytest.raises(NuanceError) as info:
        model_folders()
    message = str(info.value)
    assert str(path) in message
    assert "TOML" in message


def test_missing_settings_file_is_no_error() -> None:
    assert not settings_path().exists()
    assert folders.load_settings() == {}
    assert model_folders().extra == []


def test_extra_paths_come_from_settings(tmp_path: Path) -> None:
    first, second = tmp_path / "ComfyUI" / "models", tmp_path / "webui"
    write_settings(f'[models]\nextra_paths = ["{toml_path(first)}", "{toml_path(second)}"]\n')
    assert model_folders().extra == [first, second]
    # The models folder itself may come from elsewhere; the extra paths still apply.
    assert model_folders(tmp_path / "explicit").extra == [first, second]


def test_single_string_extra_paths_is_not_split_into_characters(tmp_path: Path) -> None:
    """A user who writes one path instead of a list must not get every character as a folder."""
    comfy = tmp_path / "ComfyUI" / "models"
    write_settings(f'[models]\nextra_paths = "{toml_path(comfy)}"\n')
    try:
        extra = model_folders().extra
    except NuanceError as exc:  # refusing with a clear message is acceptable too
        assert "extra_paths" in str(exc)
        return
    assert extra == [comfy]


# -- search folders and extra layouts ---------------------------------------------------------------
def test_comfyui_layout_is_found(tmp_path: Path, no_bundled: Path) -> None:
    comfy = tmp_path / "ComfyUI" / "models"
    touch(comfy / "checkpoints" / "dream.safetensors")
    touch(comfy / "loras" / "style.safetensors")
    touch(comfy / "vae" / "kl.safetensors")
    chosen = ModelFolders(tmp_path / "mine", [comfy])
    assert chosen.list("checkpoints") == ["dream.safetensors"]
    assert chosen.list("loras") == ["style.safetensors"]
    assert chosen.list("vae") == ["kl.safetensors"]
    assert chosen.find("checkpoints", "dream.safetensors") == comfy / "checkpoints" / "dream.safetensors"


def test_comfyui_install_folder_is_found_through_its_models_folder(tmp_path: Path, no_bundled: Path) -> None:
    comfy = tmp_path / "ComfyUI"
    touch(comfy / "models" / "checkpoints" / "dream.safetensors")
    assert ModelFolders(tmp_path / "mine", [comfy]).list("checkpoints") == ["dream.safetensors"]


def test_automatic1111_layout_is_found(tmp_path: Path, no_bundled: Path) -> None:
    webui = tmp_path / "stable-diffusion-webui"
    touch(webui / "models" / "Stable-diffusion" / "realistic.safetensors")
    touch(webui / "models" / "Lora" / "detail.safetensors")
    touch(webui / "models" / "VAE" / "vae-ft-mse.safetensors")
    touch(webui / "embeddings" / "easynegative.pt")
    chosen = ModelFolders(tmp_path / "mine", [webui])
    assert chosen.list("checkpoints") == ["realistic.safetensors"]
    assert chosen.list("loras") == ["detail.safetensors"]
    assert chosen.list("vae") == ["vae-ft-mse.safetensors"]
    assert chosen.list("embeddings") == ["easynegative.pt"]
    assert chosen.find("embeddings", "easynegative.pt") == webui / "embeddings" / "easynegative.pt"


def test_extra_paths_from_settings_are_searched(tmp_path: Path, no_bundled: Path) -> None:
    webui = tmp_path / "webui"
    touch(webui / "models" / "Stable-diffusion" / "a1111.safetensors")
    touch(tmp_path / "mine" / "checkpoints" / "own.safetensors")
    write_settings(f'[models]\ndir = "{toml_path(tmp_path / "mine")}"\nextra_paths = ["{toml_path(webui)}"]\n')
    assert model_folders().list("checkpoints") == ["a1111.safetensors", "own.safetensors"]


def test_models_folder_comes_first_then_extra_paths_in_order(tmp_path: Path, no_bundled: Path) -> None:
    root, one, two = tmp_path / "mine", tmp_path / "one", tmp_path / "two"
    for base in (root, one, two):
        (base / "checkpoints").mkdir(parents=True)
    dirs = ModelFolders(root, [one, two]).search_dirs("checkpoints")
    assert dirs == [root / "checkpoints", one / "checkpoints", two / "checkpoints"]


def test_missing_folders_are_not_searched(tmp_path: Path, no_bundled: Path) -> None:
    assert ModelFolders(tmp_path / "nothing-here", [tmp_path / "nor-here"]).search_dirs("checkpoints") == []
    assert ModelFolders(tmp_path / "nothing-here").list("checkpoints") == []


def test_the_same_folder_twice_is_searched_once(tmp_path: Path, no_bundled: Path) -> None:
    root = tmp_path / "mine"
    touch(root / "checkpoints" / "a.safetensors")
    chosen = ModelFolders(root, [root, root / ".." / "mine"])
    assert chosen.search_dirs("checkpoints") == [root / "checkpoints"]


def test_same_name_in_two_folders_first_wins(tmp_path: Path, no_bundled: Path) -> None:
    root, one, two = tmp_path / "mine", tmp_path / "one", tmp_path / "two"
    touch(one / "checkpoints" / "shared.safetensors", b"one")
    touch(two / "checkpoints" / "shared.safetensors", b"two")
    touch(two / "checkpoints" / "only-two.safetensors", b"two")
    chosen = ModelFolders(root, [one, two])
    assert chosen.find("checkpoints", "shared.safetensors").read_bytes() == b"one"
    assert chosen.list("checkpoints") == ["only-two.safetensors", "shared.safetensors"]

    touch(root / "checkpoints" / "shared.safetensors", b"root")
    assert chosen.find("checkpoints", "shared.safetensors").read_bytes() == b"root"


def test_unknown_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown model kind 'checkpoint'"):
        ModelFolders(tmp_path).search_dirs("checkpoint")


# -- bundled models -----------------------------------------------------------------------------------
def test_bundled_models_are_searched_last_when_they_exist(tmp_path: Path, no_bundled: Path) -> None:
    root = tmp_path / "mine"
    touch(no_bundled / "models" / "checkpoints" / "demo.safetensors", b"bundled")
    touch(no_bundled / "models" / "checkpoints" / "shared.safetensors", b"bundled")
    touch(root / "checkpoints" / "shared.safetensors", b"mine")
    chosen = ModelFolders(root)
    assert chosen.search_dirs("checkpoints") == [root / "checkpoints", no_bundled / "models" / "checkpoints"]
    assert chosen.list("checkpoints") == ["demo.safetensors", "shared.safetensors"]
    assert chosen.find("checkpoints", "shared.safetensors").read_bytes() == b"mine"


def test_bundled_models_folder_is_skipped_when_absent(tmp_path: Path, no_bundled: Path) -> None:
    root = tmp_path / "mine"
    touch(root / "checkpoints" / "a.safetensors")
    assert not (no_bundled / "models").exists()
    dirs = ModelFolders(root).search_dirs("checkpoints")
    assert dirs == [root / "checkpoints"]
    # Only the kinds the bundle has are searched in it.
    (no_bundled / "models" / "checkpoints").mkdir(parents=True)
    assert ModelFolders(root).search_dirs("loras") == []


# -- listing ---------------------------------------------------------------------------------------------
def test_listing_is_sorted_case_insensitively_and_includes_sub_folders(tmp_path: Path, no_bundled: Path) -> None:
    ckpts = tmp_path / "mine" / "checkpoints"
    for name in ("zeta.safetensors", "Alpha.ckpt", "beta.sft", "sd15/model.safetensors", "sd15/deeper/x.pth",
                 "SDXL/base.safetensors"):
        touch(ckpts / name)
    assert ModelFolders(tmp_path / "mine").list("checkpoints") == [
        "Alpha.ckpt", "beta.sft", "sd15/deeper/x.pth", "sd15/model.safetensors", "SDXL/base.safetensors",
        "zeta.safetensors"]


def test_listing_skips_other_files_and_hidden_folders(tmp_path: Path, no_bundled: Path) -> None:
    ckpts = tmp_path / "mine" / "checkpoints"
    touch(ckpts / "model.safetensors")
    touch(ckpts / "model.yaml")
    touch(ckpts / "put_checkpoints_here")
    touch(ckpts / "preview.png")
    touch(ckpts / ".cache" / "hidden.safetensors")
    touch(ckpts / "UPPER.SAFETENSORS")
    assert ModelFolders(tmp_path / "mine").list("checkpoints") == ["model.safetensors", "UPPER.SAFETENSORS"]


def test_diffusers_folder_is_one_model(tmp_path: Path, no_bundled: Path) -> None:
    ckpts = tmp_path / "mine" / "checkpoints"
    pipeline = ckpts / "sd15-diffusers"
    touch(pipeline / "model_index.json", b"{}")
    touch(pipeline / "unet" / "diffusion_pytorch_model.safetensors")
    touch(pipeline / "vae" / "diffusion_pytorch_model.safetensors")
    touch(ckpts / "nested" / "sdxl-diffusers" / "model_index.json", b"{}")
    touch(ckpts / "nested" / "sdxl-diffusers" / "unet" / "diffusion_pytorch_model.safetensors")
    touch(ckpts / "single.safetensors")
    chosen = ModelFolders(tmp_path / "mine")
    assert chosen.list("checkpoints") == ["nested/sdxl-diffusers", "sd15-diffusers", "single.safetensors"]
    assert chosen.find("checkpoints", "sd15-diffusers") == pipeline


def test_files_maps_names_to_paths(tmp_path: Path, no_bundled: Path) -> None:
    ckpts = tmp_path / "mine" / "checkpoints"
    touch(ckpts / "sd15" / "model.safetensors")
    expected = {"sd15/model.safetensors": ckpts / "sd15" / "model.safetensors"}
    assert ModelFolders(tmp_path / "mine").files("checkpoints") == expected


def test_ensure_layout_creates_a_folder_per_kind(tmp_path: Path) -> None:
    chosen = ModelFolders(tmp_path / "fresh")
    chosen.ensure_layout()
    for names in KINDS.values():
        assert (tmp_path / "fresh" / names[0]).is_dir()


# -- find --------------------------------------------------------------------------------------------------
def test_find_by_sub_folder_name(tmp_path: Path, no_bundled: Path) -> None:
    path = touch(tmp_path / "mine" / "checkpoints" / "sd15" / "model.safetensors")
    assert ModelFolders(tmp_path / "mine").find("checkpoints", "sd15/model.safetensors") == path


def test_find_accepts_an_existing_absolute_path(tmp_path: Path, no_bundled: Path) -> None:
    elsewhere = touch(tmp_path / "downloads" / "new.safetensors")
    assert ModelFolders(tmp_path / "mine").find("checkpoints", str(elsewhere)) == elsewhere


def test_find_error_names_the_folders_searched(tmp_path: Path, no_bundled: Path) -> None:
    root, comfy = tmp_path / "mine", tmp_path / "ComfyUI" / "models"
    touch(root / "checkpoints" / "other.safetensors")
    touch(comfy / "checkpoints" / "another.safetensors")
    with pytest.raises(ModelNotFoundError) as info:
        ModelFolders(root, [comfy]).find("checkpoints", "missing.safetensors")
    message = str(info.value)
    assert "'missing.safetensors'" in message
    assert str(root / "checkpoints") in message
    assert str(comfy / "checkpoints") in message
    assert "did you mean" not in message


def test_find_error_with_no_folders_names_the_models_folder(tmp_path: Path, no_bundled: Path) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        ModelFolders(tmp_path / "mine").find("loras", "style.safetensors")
    assert str(tmp_path / "mine" / "loras") in str(info.value)
    assert "missing" in str(info.value)


def test_find_error_suggests_a_same_named_file_in_a_sub_folder(tmp_path: Path, no_bundled: Path) -> None:
    touch(tmp_path / "mine" / "checkpoints" / "sd15" / "dream.safetensors")
    with pytest.raises(ModelNotFoundError, match=r"did you mean 'sd15/dream\.safetensors'\?"):
        ModelFolders(tmp_path / "mine").find("checkpoints", "dream.safetensors")


def test_find_missing_absolute_path_is_an_error(tmp_path: Path, no_bundled: Path) -> None:
    with pytest.raises(ModelNotFoundError):
        ModelFolders(tmp_path / "mine").find("checkpoints", str(tmp_path / "gone.safetensors"))


def test_model_not_found_is_a_nuance_error() -> None:
    assert issubclass(ModelNotFoundError, NuanceError)


def test_models_setting_that_is_not_a_table_is_a_clear_error() -> None:
    """``models = "~/AI"`` (instead of a [models] section) must say what is wrong, not crash."""
    write_settings('models = "~/AI/models"\n')
    with pytest.raises(NuanceError, match="models"):
        model_folders()


def test_symlinked_folders_are_followed(tmp_path: Path, no_bundled: Path) -> None:
    shared = touch(tmp_path / "big-drive" / "sdxl" / "base.safetensors").parent
    ckpts = tmp_path / "mine" / "checkpoints"
    ckpts.mkdir(parents=True)
    try:
        (ckpts / "sdxl").symlink_to(shared, target_is_directory=True)
    except OSError:
        pytest.skip("symbolic links are not available here")
    assert ModelFolders(tmp_path / "mine").list("checkpoints") == ["sdxl/base.safetensors"]


def test_symlink_loop_lists_each_model_once(tmp_path: Path, no_bundled: Path) -> None:
    ckpts = tmp_path / "mine" / "checkpoints"
    touch(ckpts / "sub" / "a.safetensors")
    try:
        (ckpts / "sub" / "up").symlink_to(ckpts, target_is_directory=True)
    except OSError:
        pytest.skip("symbolic links are not available here")
    assert ModelFolders(tmp_path / "mine").list("checkpoints") == ["sub/a.safetensors"]
