"""Installing plugins from a folder, an archive, a git repository and a package; refusals write nothing."""

from __future__ import annotations

import os
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from plugin_support import build_wheel, git, make_plugin, snapshot_tree, zip_folder

from studio.core import paths
from studio.core.graph import Graph
from studio.engine import Executor
from studio.plugins.install import TrustRequired, install, parse_source, prepare, uninstall, update
from studio.plugins.manager import PluginManager
from studio.plugins.manifest import PluginError
from studio.plugins.scan import scan_folder, scan_source
from studio.plugins.state import PluginState, packages_dir, plugins_dir


@pytest.fixture(autouse=True)
def _clean_imports():
    path = list(sys.path)
    yield
    sys.path[:] = path
    for key in [k for k in sys.modules if k.startswith(("nuance_plugins.", "nuance_glow", "tinydep"))]:
        del sys.modules[key]


def user_files() -> dict[str, dict[str, int]]:
    return {"data": snapshot_tree(paths.data_dir()), "config": snapshot_tree(paths.config_dir())}


def loaded() -> PluginManager:
    manager = PluginManager(bundled_dir=False)
    manager.load_all()
    return manager


def run_value(manager: PluginManager, node_type: str, value: int) -> int:
    graph = Graph()
    node = graph.add_node(node_type, {"value": value})
    preview = graph.add_node("PreviewAny")
    graph.connect(node.id, 0, preview.id, "source")
    result = Executor(manager.registry).run(graph)
    assert result.ok, result.nodes[node.id].error
    return int(result.nodes[preview.id].ui["text"])


# -- sources ------------------------------------------------------------------------------------
def test_parse_source_tells_the_kinds_apart(tmp_path):
    folder = make_plugin(tmp_path, "thing")
    archive = zip_folder(folder, tmp_path / "thing.zip")
    assert parse_source(str(folder)).kind == "folder"
    assert parse_source(str(archive)).kind == "archive"
    git_source = parse_source("https://github.com/someone/nuance-glow.git@v1.2")
    assert (git_source.kind, git_source.location, git_source.rev) == ("git", "https://github.com/someone/nuance-glow.git", "v1.2")
    assert parse_source("git@github.com:someone/glow.git").rev == ""
    assert parse_source("git+https://example.com/glow").kind == "git"
    assert parse_source(f"{folder}@main").kind == "git"  # a local repository at a revision
    assert parse_source("nuance-glow==1.0").kind == "package"
    with pytest.raises(PluginError, match="no such file"):
        parse_source(str(tmp_path / "missing.zip"))
    with pytest.raises(PluginError, match="NAME or NAME==VERSION"):
        parse_source("glow[extra]")


# -- trust and folders ---------------------------------------------------------------------------
def test_installing_needs_trust_and_without_it_writes_nothing(tmp_path):
    folder = make_plugin(tmp_path / "src", "adder", amount=5, prelude="import subprocess\n")
    before = user_files()
    with pytest.raises(TrustRequired) as caught:
        install(str(folder))
    assert any(f.category == "runs programs" and f.path == "__init__.py" for f in caught.value.findings)
    assert "--trust" in str(caught.value)
    assert user_files() == before


def test_install_from_a_folder_loads_and_runs(tmp_path):
    folder = make_plugin(tmp_path / "src", "adder", amount=5)
    result = install(str(folder), trust=True)
    assert result.name == "adder" and result.version == "1.0" and result.path == plugins_dir() / "adder"
    assert (plugins_dir() / "adder" / "plugin.toml").is_file()
    record = PluginState.load().installed["adder"]
    assert record.kind == "folder" and record.source == str(folder.resolve()) and record.trusted
    assert run_value(loaded(), "adder.Add", 2) == 7
    with pytest.raises(PluginError, match="already installed"):
        install(str(folder), trust=True)


def test_a_folder_with_a_symlink_is_refused(tmp_path):
    folder = make_plugin(tmp_path / "src", "linky")
    os.symlink("/etc/passwd", folder / "secrets.txt")
    before = user_files()
    with pytest.raises(PluginError, match="symbolic links"):
        install(str(folder), trust=True)
    assert user_files() == before


# -- archives -------------------------------------------------------------------------------------
def test_install_from_a_zip(tmp_path):
    folder = make_plugin(tmp_path / "src", "zipped", amount=3)
    archive = zip_folder(folder, tmp_path / "zipped-1.0.zip")
    result = install(str(archive), trust=True)
    assert result.record.kind == "archive" and result.record.source == str(archive.resolve())
    assert run_value(loaded(), "zipped.Add", 1) == 4


@pytest.mark.parametrize("entry", ["../escaped.py", "/tmp/absolute.py", "zipped/../../escaped.py", "C:/windows.py"])
def test_an_escaping_zip_is_refused_and_writes_nothing(tmp_path, entry):
    folder = make_plugin(tmp_path / "src", "zipped")
    archive = zip_folder(folder, tmp_path / "evil.zip")
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr(entry, "print('gotcha')\n")
    before = user_files()
    with pytest.raises(PluginError, match="refused, nothing was written") as caught:
        install(str(archive), trust=True)
    assert entry in str(caught.value)
    assert user_files() == before
    assert not (tmp_path / "escaped.py").exists() and not Path("/tmp/absolute.py").exists()


def test_a_zip_with_a_symlink_entry_is_refused(tmp_path):
    folder = make_plugin(tmp_path / "src", "zipped")
    archive = zip_folder(folder, tmp_path / "link.zip")
    with zipfile.ZipFile(archive, "a") as zf:
        info = zipfile.ZipInfo("zipped/link")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    before = user_files()
    with pytest.raises(PluginError, match="symbolic link"):
        install(str(archive), trust=True)
    assert user_files() == before


def test_a_tar_with_a_link_is_refused(tmp_path):
    folder = make_plugin(tmp_path / "src", "tarred")
    archive = tmp_path / "tarred.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(folder, arcname="tarred")
        link = tarfile.TarInfo("tarred/escape")
        link.type = tarfile.SYMTYPE
        link.linkname = "../../../etc"
        tf.addfile(link)
    before = user_files()
    with pytest.raises(PluginError, match="is a link"):
        install(str(archive), trust=True)
    assert user_files() == before


# -- git -----------------------------------------------------------------------------------------
def test_install_from_a_git_repository_records_the_commit_and_updates(tmp_path):
    repo = make_plugin(tmp_path, "gitted", amount=1, folder="repo")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "one")
    git(repo, "tag", "v1")
    first = git(repo, "rev-parse", "HEAD")
    make_plugin(tmp_path, "gitted", amount=10, version="2.0", folder="repo")
    git(repo, "commit", "-q", "-am", "two")
    second = git(repo, "rev-parse", "HEAD")

    result = install(f"file://{repo}@v1", trust=True)
    assert result.record.kind == "git" and result.record.commit == first and result.record.rev == "v1"
    assert not (plugins_dir() / "gitted" / ".git").exists()
    assert run_value(loaded(), "gitted.Add", 1) == 2

    with pytest.raises(TrustRequired):
        update("gitted", rev="main")
    updated = update("gitted", rev="main", trust=True)
    assert updated.record.commit == second and updated.version == "2.0"
    assert PluginState.load().installed["gitted"].commit == second
    assert run_value(loaded(), "gitted.Add", 1) == 11


# -- packages and requirements ----------------------------------------------------------------------
def _wheels(tmp_path: Path) -> Path:
    wheels = tmp_path / "wheels"
    build_wheel(wheels, "tinydep", "1.0", {"tinydep/__init__.py": "VALUE = 100\n"})
    build_wheel(wheels, "tinydep", "2.0", {"tinydep/__init__.py": "VALUE = 200\n"})
    glow = '''
from studio.api import Int, Node, NodePack, Output


class Glow(Node):
    NAME = "Glow"
    INPUTS = [Int("value", 1)]
    OUTPUTS = [Output("result", "INT")]

    def run(self, ctx, value):
        import tinydep

        return value + tinydep.VALUE


NODE_PACK = NodePack(name="glow", version="1.0", nodes=[Glow])
'''
    build_wheel(wheels, "nuance-glow", "1.0", {"nuance_glow/__init__.py": glow},
                entry_points={"glow": "nuance_glow"}, requires=("tinydep==1.0",))
    return wheels


def test_install_a_package_by_name_with_requirements_in_a_private_folder(tmp_path):
    wheels = _wheels(tmp_path)
    pip_args = ["--no-index", "--find-links", str(wheels)]
    result = install("nuance-glow", trust=True, pip_args=pip_args)
    assert result.name == "glow" and result.version == "1.0" and result.record.kind == "package"
    assert result.record.source == "nuance-glow" and result.packages == {"tinydep": "1.0"}
    private = packages_dir("glow")
    assert (private / "tinydep" / "__init__.py").is_file()
    import importlib.util

    assert importlib.util.find_spec("tinydep") is None  # not in the app's environment
    manager = loaded()
    assert manager.get("glow").origin == "package" and manager.get("glow").loaded, manager.get("glow").error
    assert run_value(manager, "glow.Glow", 1) == 101

    # A second plugin needing another version of the same package is refused before anything changes.
    other = make_plugin(tmp_path / "src", "greedy", requirements=("tinydep>=2.0",))
    before = user_files()
    with prepare(str(other), pip_args=pip_args) as prepared:
        assert prepared.plan_error is not None and "plugin 'glow' uses tinydep 1.0" in prepared.plan_error
        with pytest.raises(PluginError, match="tinydep"):
            prepared.commit(trust=True)
    assert user_files() == before

    removed = uninstall("glow")
    assert plugins_dir() / "glow" in removed and private in removed and not private.exists()


def test_a_requirement_that_would_change_a_core_package_is_refused(tmp_path):
    folder = make_plugin(tmp_path / "src", "oldnumpy", requirements=("numpy<1.0",))
    before = user_files()
    with pytest.raises(PluginError, match=r"core package of Nuance Studio.*change the app's own environment"):
        install(str(folder), trust=True)
    assert user_files() == before
    satisfied = make_plugin(tmp_path / "src", "oknumpy", requirements=("numpy>=1.0",))
    result = install(str(satisfied), trust=True)  # met by the app's numpy: nothing to install
    assert result.packages == {} and not packages_dir("oknumpy").exists()


def test_uninstall_leaves_no_trace(tmp_path):
    before = user_files()
    folder = make_plugin(tmp_path / "src", "fleeting")
    install(str(folder), trust=True)
    manager = loaded()
    manager.disable("fleeting")
    assert user_files() != before
    uninstall("fleeting")
    assert user_files() == before
    with pytest.raises(PluginError, match="no installed plugin"):
        uninstall("fleeting")


def test_dev_install_links_the_folder_and_uninstall_keeps_it(tmp_path):
    folder = make_plugin(tmp_path / "src", "devved")
    result = install(str(folder), trust=True, dev=True)
    assert result.path == folder.resolve() and not (plugins_dir() / "devved").exists()
    assert loaded().get("devved").origin == "dev"
    uninstall("devved")
    assert folder.is_dir() and "devved" not in PluginState.load().installed


def test_builtin_names_are_reserved(tmp_path):
    folder = make_plugin(tmp_path / "src", "sd")
    with pytest.raises(PluginError, match="reserved"):
        install(str(folder), trust=True)


# -- scan ----------------------------------------------------------------------------------------
def test_scan_lists_risky_things_with_their_lines(tmp_path):
    import base64

    blob = base64.b64encode(bytes(range(256)) * 2).decode()
    source = (
        "import os\n"
        "import socket\n"
        "from subprocess import run as go\n"
        "import base64\n"
        f"payload = '{blob}'\n"
        "def f(x):\n"
        "    go(['ls'])\n"
        "    os.system('rm -rf /')\n"
        "    exec(base64.b64decode(payload))\n"
        "    return eval(x)\n"
    )
    findings = {(f.line, f.category) for f in scan_source(source, "x.py")}
    assert (2, "network") in findings and (3, "runs programs") in findings
    assert (5, "obfuscation") in findings and (7, "runs programs") in findings
    assert (8, "runs programs") in findings and (9, "evaluates code") in findings and (9, "obfuscation") in findings
    assert (10, "evaluates code") in findings
    assert scan_source("import torch\nx = torch.load(p, weights_only=True)\n", "ok.py") == []
    assert scan_source("def broken(:\n", "bad.py")[0].category == "unparsable"
    folder = make_plugin(tmp_path, "native")
    (folder / "fast.so").write_bytes(b"\x7fELF")
    assert any(f.category == "native code" for f in scan_folder(folder))


def test_manifest_requirements_land_in_the_private_folder_and_are_checked_at_load(tmp_path):
    wheels = _wheels(tmp_path)
    body = "import tinydep\n        value = value + tinydep.VALUE"
    folder = make_plugin(tmp_path / "src", "needy", requirements=("tinydep==2.0",), body=body)
    with prepare(str(folder), pip_args=["--no-index", "--find-links", str(wheels)]) as prepared:
        assert prepared.plan_error is None and prepared.packages == {"tinydep": "2.0"}
        assert not packages_dir("needy").exists()  # a plan writes nothing
        result = prepared.commit(trust=True)
    assert (packages_dir("needy") / "tinydep" / "__init__.py").read_text(encoding="utf-8") == "VALUE = 200\n"
    assert result.record.packages == {"tinydep": "2.0"}
    manager = loaded()
    assert run_value(manager, "needy.Add", 1) == 1 + 200 + 1
    assert str(packages_dir("needy")) == sys.path[-1]  # after the app's own folders

    # Someone deletes the private folder: the plugin is reported, not half-loaded.
    import shutil

    shutil.rmtree(packages_dir("needy"))
    for key in [k for k in sys.modules if k.startswith("tinydep")]:
        del sys.modules[key]
    manager = loaded()
    needy = manager.get("needy")
    assert needy.status == "failed" and "requirements are not installed (tinydep==2.0)" in needy.error
