"""Layering: the graph core and the engine run with no Qt, torch, diffusers or transformers.

Each check runs in a fresh interpreter, so what other tests imported cannot hide a violation.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ["PySide6", "shiboken6", "torch", "diffusers", "transformers"]

IMPORT_ALL = textwrap.dedent(
    """
    import importlib, pkgutil

    def import_all(package_name):
        package = importlib.import_module(package_name)
        names = [package_name]
        for info in pkgutil.walk_packages(package.__path__, package_name + "."):
            importlib.import_module(info.name)
            names.append(info.name)
        return names

    imported = import_all("studio.core") + import_all("studio.engine")
    import studio.api
    import studio.plugins
    """
)


def run_python(code):
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"subprocess failed:\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_core_engine_api_and_plugins_work_without_heavy_libraries():
    code = f"HEAVY = {HEAVY!r}\n" + textwrap.dedent(
        """
        import sys
        for name in HEAVY:
            sys.modules[name] = None  # importing it now raises ImportError
        blocked = []
        for name in HEAVY:
            try:
                __import__(name)
            except ImportError:
                blocked.append(name)
        """
    ) + IMPORT_ALL + textwrap.dedent(
        """
        import json
        from studio.core.graph import Graph
        from studio.engine import Executor
        from studio.plugins import LoadReport, create_registry

        report = LoadReport()
        registry = create_registry(report)
        graph = Graph()
        a = graph.add_node("PrimitiveInt", {"value": 6})
        b = graph.add_node("PrimitiveInt", {"value": 7})
        m = graph.add_node("MathInt", {"operation": "multiply"})
        p = graph.add_node("PreviewAny")
        graph.connect(a.id, 0, m.id, "a")
        graph.connect(b.id, 0, m.id, "b")
        graph.connect(m.id, 0, p.id, "source")
        result = Executor(registry).run(graph)
        print(json.dumps({
            "blocked": blocked,
            "imported": imported,
            "errors": report.errors,
            "status": result.status,
            "shown": result.nodes[p.id].ui.get("text"),
            "loaded": sorted(n for n in sys.modules if n.split(".")[0] in HEAVY and sys.modules[n] is not None),
        }))
        """
    )
    out = run_python(code)
    assert out["blocked"] == HEAVY  # the blocking itself works, so the rest means something
    assert "studio.core.workflow" in out["imported"]
    assert "studio.core.validate" in out["imported"]
    assert "studio.engine.executor" in out["imported"]
    assert "studio.engine.worker" in out["imported"]
    assert out["errors"] == []
    assert out["status"] == "succeeded"
    assert out["shown"] == "42"
    assert out["loaded"] == []


def test_importing_core_and_engine_loads_no_heavy_library():
    code = IMPORT_ALL + textwrap.dedent(
        f"""
        import json, sys
        from studio.plugins import create_registry
        create_registry()
        print(json.dumps(sorted(n for n in {HEAVY!r} if n in sys.modules)))
        """
    )
    assert run_python(code) == []



def test_the_editor_opens_without_torch_diffusers_or_transformers():
    """The window must appear fast: model libraries load only when a run needs them."""
    model_libraries = ["torch", "diffusers", "transformers"]
    code = f"MODEL_LIBRARIES = {model_libraries!r}\n" + textwrap.dedent(
        """
        import importlib, json, os, pkgutil, sys
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        for name in MODEL_LIBRARIES:
            sys.modules[name] = None  # importing it now raises ImportError
        import studio.ui
        names = [info.name for info in pkgutil.walk_packages(studio.ui.__path__, "studio.ui.")]
        for name in names:
            importlib.import_module(name)
        from PySide6.QtWidgets import QApplication
        app = QApplication([])
        from studio.ui.app import create_window
        window = create_window()
        print(json.dumps({"imported": names, "nodes": len(window.document.graph),
                          "loaded": sorted(n for n in sys.modules if n.split(".")[0] in MODEL_LIBRARIES
                                           and sys.modules[n] is not None)}))
        """
    )
    out = run_python(code)
    assert "studio.ui.window" in out["imported"] and "studio.ui.canvas.scene" in out["imported"]
    assert out["nodes"] > 0  # the txt2img example opened
    assert out["loaded"] == []
