"""The wheel: a plain (non-editable) install must carry its resources and console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True, capture_output=True, text=True,
    )
    (found,) = out.glob("nuance_studio-*.whl")
    return found


@pytest.mark.slow
def test_wheel_contains_packages_resources_and_script(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        scripts = zf.read(entry_points).decode()
    assert "studio/core/workflow.py" in names
    assert "nodes/basic/__init__.py" in names
    assert "studio/resources/schema/workflow.schema.json" in names
    assert "studio/resources/workflows/hello.json" in names
    assert "studio/resources/plugin_template/plugin.toml" in names
    assert "studio/bundled_plugins/imagetools/plugin.toml" in names  # the example plugin ships with the app
    assert "nuance = studio.cli:entry" in scripts


@pytest.mark.slow
def test_installed_wheel_runs_a_bundled_workflow(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, text=True)
    env = {**os.environ, "PYTHONPATH": str(site), "NUANCE_DATA_DIR": str(tmp_path / "data")}
    code = (
        "import json, studio, sys\n"
        "from studio.core.resources import resources_dir\n"
        "from studio.cli import main\n"
        "from studio.plugins.manager import bundled_plugins_dir\n"
        "print(json.dumps({'studio': studio.__file__, 'resources': str(resources_dir()), "
        "'bundled': str(bundled_plugins_dir())}))\n"
        f"sys.exit(main(['run', 'hello', '--quiet', '--output-dir', {str(tmp_path / 'out')!r}]))\n"
    )
    # Run from an empty folder so the source checkout cannot be imported by accident.
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    where = json.loads(proc.stdout.splitlines()[0])
    assert Path(where["studio"]).is_relative_to(site)
    assert Path(where["resources"]) == site / "studio" / "resources"
    assert Path(where["bundled"]) == site / "studio" / "bundled_plugins"
    saved = list((tmp_path / "out").glob("hello_*_.txt"))
    assert [p.read_text(encoding="utf-8") for p in saved] == ["Hello, world! 6 × 7 = 42"]
