"""``nuance plugins …`` in-process (main(argv)), plus one subprocess smoke test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from plugin_support import make_plugin, snapshot_tree, zip_folder

from studio.cli import main
from studio.core import paths
from studio.plugins.state import PluginState, plugins_dir

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _clean_imports():
    path = list(sys.path)
    yield
    sys.path[:] = path
    for key in [k for k in sys.modules if k.startswith("nuance_plugins.")]:
        del sys.modules[key]


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def adder_workflow(tmp_path: Path, node_type: str = "adder.Add") -> Path:
    path = tmp_path / "uses_adder.json"
    path.write_text(json.dumps({"format": "nuance.workflow", "version": 1, "graph": {
        "nodes": [{"id": "1", "type": node_type, "inputs": {"value": 2}}, {"id": "2", "type": "PreviewAny"}],
        "links": [{"id": "1", "from_node": "1", "from_output": 0, "to_node": "2", "to_input": "source"}]}}),
        encoding="utf-8")
    return path


def test_list_shows_builtins_the_bundled_example_and_failures(capsys):
    make_plugin(plugins_dir(), "broken", init="raise RuntimeError('bad plugin code')\n")
    code, out, err = cli(capsys, "plugins", "list")
    assert code == 0
    lines = out.splitlines()
    assert any(line.startswith("sd ") and "built-in" in line for line in lines)
    assert any(line.startswith("imagetools ") and "loaded" in line and "bundled" in line for line in lines)
    broken = next(i for i, line in enumerate(lines) if line.startswith("broken "))
    assert "failed" in lines[broken] and "RuntimeError: bad plugin code" in lines[broken + 1]
    code, out, _ = cli(capsys, "plugins", "list", "--json")
    data = {item["name"]: item for item in json.loads(out)}
    assert data["broken"]["status"] == "failed" and "bad plugin code" in data["broken"]["error"]
    assert "imagetools.Levels" in data["imagetools"]["nodes"]
    # Other commands warn about the broken plugin but work.
    code, out, err = cli(capsys, "nodes")
    assert code == 0 and "plugin 'broken'" in err and "imagetools.Levels" in out


def test_install_disable_enable_update_uninstall(capsys, tmp_path):
    source = make_plugin(tmp_path / "src", "adder", amount=5, prelude="import subprocess\n")
    before = {"data": snapshot_tree(paths.data_dir()), "config": snapshot_tree(paths.config_dir())}

    code, out, err = cli(capsys, "plugins", "install", source)
    assert code == 2 and "runs programs" in err and "--trust" in err
    assert not plugins_dir().exists()

    code, out, err = cli(capsys, "plugins", "install", source, "--trust")
    assert code == 0, err
    assert "installed plugin 'adder' 1.0" in out and "adder.Add" in out and "runs programs" in out
    workflow = adder_workflow(tmp_path)
    code, out, err = cli(capsys, "run", workflow, "--quiet", "--output-dir", tmp_path / "out")
    assert code == 0 and "node 2 (PreviewAny): 7" in out

    code, out, _ = cli(capsys, "plugins", "disable", "adder")
    assert code == 0 and "disabled" in out and PluginState.load().disabled == {"adder"}
    code, out, _ = cli(capsys, "nodes")
    assert "adder.Add" not in out
    code, out, err = cli(capsys, "run", workflow, "--quiet")
    assert code == 2 and "plugin 'adder', which is disabled" in err and "nuance plugins enable adder" in err

    code, out, _ = cli(capsys, "plugins", "enable", "adder")
    assert code == 0 and "enabled" in out

    make_plugin(tmp_path / "src", "adder", amount=50, version="1.1", prelude="import subprocess\n")
    code, out, err = cli(capsys, "plugins", "update", "adder", "--trust")
    assert code == 0, err
    assert "updated plugin 'adder' 1.1" in out
    code, out, err = cli(capsys, "run", workflow, "--quiet", "--output-dir", tmp_path / "out")
    assert code == 0 and "node 2 (PreviewAny): 52" in out

    code, out, _ = cli(capsys, "plugins", "uninstall", "adder")
    assert code == 0 and "uninstalled" in out
    after = {"data": snapshot_tree(paths.data_dir()), "config": snapshot_tree(paths.config_dir())}
    after["data"] = {k: v for k, v in after["data"].items() if not k.startswith("output/")}
    assert after == before


def test_refusals_are_one_line_errors(capsys, tmp_path):
    code, _, err = cli(capsys, "plugins", "enable", "ghost")
    assert code == 2 and "no plugin named 'ghost'" in err
    code, _, err = cli(capsys, "plugins", "disable", "basic")
    assert code == 2 and "built-in" in err
    code, _, err = cli(capsys, "plugins", "uninstall", "imagetools")
    assert code == 2 and "cannot be uninstalled" in err
    code, _, err = cli(capsys, "plugins", "install", tmp_path / "nothing.zip", "--trust")
    assert code == 2 and "no such file" in err
    code, _, err = cli(capsys, "plugins", "update", "ghost", "--trust")
    assert code == 2 and "not installed by the plugin manager" in err


def test_scan_and_new(capsys, tmp_path):
    folder = make_plugin(tmp_path / "src", "shady", prelude="import socket\nx = eval('1')\n")
    archive = zip_folder(folder, tmp_path / "shady.zip")
    code, out, _ = cli(capsys, "plugins", "scan", archive)
    assert code == 0 and "plugin 'shady' 1.0" in out
    assert "__init__.py:1: network" in out and "__init__.py:2: evaluates code" in out
    assert not plugins_dir().exists()

    code, out, _ = cli(capsys, "plugins", "new", "sparkle", "--dir", tmp_path)
    assert code == 0
    made = tmp_path / "sparkle"
    assert 'name = "sparkle"' in (made / "plugin.toml").read_text(encoding="utf-8")
    assert 'name="sparkle"' in (made / "__init__.py").read_text(encoding="utf-8")
    code, out, err = cli(capsys, "plugins", "install", "--dev", "--trust", made)
    assert code == 0, err
    assert "sparkle.Brighten" in out
    code, _, err = cli(capsys, "plugins", "new", "sparkle", "--dir", tmp_path)
    assert code == 2 and "already exists" in err


@pytest.mark.slow
def test_plugins_list_in_a_fresh_process(tmp_path):
    make_plugin(plugins_dir(), "adder")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "studio.cli", "plugins", "list"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert any(line.startswith("adder ") and "loaded" in line for line in proc.stdout.splitlines())
