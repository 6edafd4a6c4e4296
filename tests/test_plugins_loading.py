"""Discovering and loading plugins: each on its own, failures reported and rolled back."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from plugin_support import build_wheel, make_plugin

from studio.core.errors import GraphValidationError
from studio.core.graph import Graph
from studio.core.nodedef import API_VERSION
from studio.core.validate import check_graph
from studio.core.workflow import load_workflow
from studio.engine import Executor
from studio.plugins.manager import BUNDLED, DISABLED, FAILED, INCOMPATIBLE, LOADED, SHADOWED, PluginManager
from studio.plugins.state import PluginState, plugins_dir


@pytest.fixture(autouse=True)
def _clean_imports():
    """Plugins are imported under nuance_plugins.*; drop them and any sys.path additions after each test."""
    path = list(sys.path)
    yield
    sys.path[:] = path
    for key in [k for k in sys.modules if k.startswith("nuance_plugins.") or k.startswith("nuance_test_")]:
        del sys.modules[key]


def manager(bundled: Path | None = None) -> PluginManager:
    plugins = PluginManager(bundled_dir=bundled or False)
    plugins.load_all()
    return plugins


def run_node(plugins: PluginManager, node_type: str, value: int = 1):
    graph = Graph()
    node = graph.add_node(node_type, {"value": value})
    preview = graph.add_node("PreviewAny")
    graph.connect(node.id, 0, preview.id, "source")
    return Executor(plugins.registry).run(graph), node.id


def test_builtins_and_a_user_plugin_load_through_one_path():
    make_plugin(plugins_dir(), "adder", amount=5)
    plugins = manager()
    status = {p.name: (p.origin, p.status) for p in plugins.plugins}
    assert status["basic"] == ("built-in", LOADED) and status["sd"] == ("built-in", LOADED)
    assert status["adder"] == ("user", LOADED)
    assert "adder.Add" in plugins.registry and "KSampler" in plugins.registry
    result, node_id = run_node(plugins, "adder.Add", 2)
    assert result.ok and result.nodes[node_id].status == "executed"
    assert plugins.get("adder").node_types == ["adder.Add"]


def test_a_plugin_that_fails_to_import_is_reported_and_the_rest_load(caplog):
    make_plugin(plugins_dir(), "broken", init="import does_not_exist_anywhere\n")
    make_plugin(plugins_dir(), "fine")
    plugins = manager()
    broken = plugins.get("broken")
    assert broken.status == FAILED
    assert "ModuleNotFoundError" in broken.error and "does_not_exist_anywhere" in broken.error
    assert plugins.get("fine").loaded and "fine.Add" in plugins.registry
    assert any("broken" in line for line in plugins.errors())
    assert "nuance_plugins.broken" not in sys.modules
    assert any("broken" in r.getMessage() for r in caplog.records)  # and the log says so


def test_a_plugin_raising_during_registration_is_rolled_back():
    # Its first node registers, its second clashes with the first's alias: neither may remain.
    init = '''
from studio.api import Int, Node, NodePack, Output

class First(Node):
    NAME = "First"
    ALIASES = ("Shared",)
    INPUTS = [Int("value", 1)]
    OUTPUTS = [Output("result", "INT")]
    def run(self, ctx, value):
        return value

class Second(First):
    NAME = "Second"

NODE_PACK = NodePack(name="halfway", nodes=[First, Second])
'''
    make_plugin(plugins_dir(), "halfway", init=init)
    plugins = manager()
    plugin = plugins.get("halfway")
    assert plugin.status == FAILED and "none of its nodes were loaded" in plugin.error
    assert "halfway.First" not in plugins.registry and "Shared" not in plugins.registry
    assert "nuance_plugins.halfway" not in sys.modules


def test_conflicting_alias_between_plugins_refuses_the_second_only():
    plugin_with_alias = '''
from studio.api import Int, Node, NodePack, Output

class Thing(Node):
    NAME = "Thing"
    ALIASES = ("{alias}",)
    INPUTS = [Int("value", 1)]
    OUTPUTS = [Output("result", "INT")]
    def run(self, ctx, value):
        return value

NODE_PACK = NodePack(name="{name}", nodes=[Thing])
'''
    make_plugin(plugins_dir(), "alpha", init=plugin_with_alias.format(alias="legacy.Thing", name="alpha"))
    make_plugin(plugins_dir(), "beta", init=plugin_with_alias.format(alias="legacy.Thing", name="beta"))
    plugins = manager()
    assert plugins.get("alpha").loaded
    beta = plugins.get("beta")
    assert beta.status == FAILED and "legacy.Thing" in beta.error and "already" in beta.error
    assert "beta.Thing" not in plugins.registry
    assert plugins.registry.canonical("legacy.Thing") == "alpha.Thing"


def test_plugins_cannot_replace_builtin_nodes():
    init = '''
from studio.api import Int, Node, NodePack, Output

class Fake(Node):
    NAME = "KSampler"
    ALIASES = ("KSampler",)
    INPUTS = [Int("value", 1)]
    OUTPUTS = [Output("result", "INT")]
    def run(self, ctx, value):
        return value

NODE_PACK = NodePack(name="hijack", nodes=[Fake])
'''
    make_plugin(plugins_dir(), "hijack", init=init)
    plugins = manager()
    hijack = plugins.get("hijack")
    assert hijack.status == FAILED and "KSampler" in hijack.error
    assert plugins.registry.spec("KSampler").pack is None  # still the built-in one
    assert "hijack.KSampler" not in plugins.registry


def test_a_plugin_needing_a_newer_api_is_skipped_before_its_code_runs(tmp_path):
    marker = tmp_path / "ran"
    make_plugin(plugins_dir(), "future", api_version=API_VERSION + 1,
                init=f"open({str(marker)!r}, 'w').close()\n")
    plugins = manager()
    future = plugins.get("future")
    assert future.status == INCOMPATIBLE and f"version {API_VERSION + 1}" in future.error
    assert not marker.exists()


def test_a_plugin_with_a_bad_manifest_is_reported():
    folder = plugins_dir() / "garbled"
    folder.mkdir(parents=True)
    (folder / "plugin.toml").write_text("name = [unterminated", encoding="utf-8")
    (folder / "__init__.py").write_text("", encoding="utf-8")
    plugins = manager()
    garbled = next(p for p in plugins.plugins if p.path == folder)
    assert garbled.status == FAILED and "not valid TOML" in garbled.error


def test_pack_name_must_match_the_manifest():
    make_plugin(plugins_dir(), "named", init=make_init_named("other"))
    plugins = manager()
    assert plugins.get("named").status == FAILED and "'other'" in plugins.get("named").error


def make_init_named(pack: str) -> str:
    return f'''
from studio.api import NodePack
NODE_PACK = NodePack(name="{pack}", nodes=[])
'''


def test_a_plugin_node_raising_at_run_time_fails_only_that_run_and_names_the_plugin():
    make_plugin(plugins_dir(), "crashy", body="raise RuntimeError('boom')")
    plugins = manager()
    result, node_id = run_node(plugins, "crashy.Add")
    assert not result.ok
    record = result.nodes[node_id]
    assert "boom" in record.error and "plugin 'crashy'" in record.error
    # The app goes on: other graphs still run.
    graph = Graph()
    a = graph.add_node("PrimitiveInt", {"value": 3})
    p = graph.add_node("PreviewAny")
    graph.connect(a.id, 0, p.id, "source")
    assert Executor(plugins.registry).run(graph).ok


def test_user_plugin_shadows_the_bundled_copy(tmp_path):
    bundled = tmp_path / "bundled"
    make_plugin(bundled, "shared", amount=1, version="1.0")
    make_plugin(plugins_dir(), "shared", amount=10, version="2.0")
    plugins = manager(bundled)
    loaded = plugins.get("shared")
    assert loaded.origin == "user" and loaded.version == "2.0"
    shadowed = [p for p in plugins.plugins if p.name == "shared" and p.status == SHADOWED]
    assert len(shadowed) == 1 and shadowed[0].origin == BUNDLED and "comes first" in shadowed[0].error


def test_disabled_plugin_is_unavailable_and_its_workflow_opens_with_placeholders():
    make_plugin(plugins_dir(), "adder", amount=5)
    plugins = manager()
    change = plugins.disable("adder")
    assert change.removed == ["adder.Add"] and "adder.Add" not in plugins.registry
    assert PluginState.load().disabled == {"adder"}

    fresh = manager()  # the next start remembers it
    assert fresh.get("adder").status == DISABLED and "adder.Add" not in fresh.registry
    data = {"format": "nuance.workflow", "version": 1, "graph": {"nodes": [
        {"id": "1", "type": "adder.Add", "inputs": {"value": 7}},
        {"id": "2", "type": "PreviewAny"}],
        "links": [{"id": "1", "from_node": "1", "from_output": 0, "to_node": "2", "to_input": "source"}]}}
    workflow = load_workflow(data, fresh.registry)
    assert workflow.placeholders == ["1"] and workflow.graph.nodes["1"].inputs == {"value": 7}
    with pytest.raises(GraphValidationError) as caught:
        check_graph(workflow.graph, fresh.registry)
    assert "plugin 'adder', which is disabled" in str(caught.value)

    change = fresh.enable("adder")
    assert change.added == ["adder.Add"]
    assert check_graph(workflow.graph, fresh.registry) is not None


def test_builtin_packs_cannot_be_disabled():
    plugins = manager()
    with pytest.raises(Exception, match="built-in"):
        plugins.disable("sd")


def test_missing_plugin_explanations():
    make_plugin(plugins_dir(), "broken", init="raise ValueError('nope')\n")
    plugins = manager()
    assert "which is not installed" in plugins.explain_missing("ghost.Node")
    known = {"ghost": {"version": "2.1", "homepage": "https://example.com/ghost"}}
    text = plugins.explain_missing("ghost.Node", known)
    assert "'ghost' 2.1" in text and "https://example.com/ghost" in text
    assert "failed to load" in plugins.explain_missing("broken.Add") and "nope" in plugins.explain_missing("broken.Add")
    assert "no installed node or plugin provides 'Mystery'" in plugins.explain_missing("Mystery")


def test_used_plugins_records_versions_and_keeps_missing_ones():
    make_plugin(plugins_dir(), "adder", version="3.2", extra_toml='homepage = "https://example.com/adder"\n')
    plugins = manager()
    previous = {"ghost": {"version": "1.0"}, "stale": {"version": "0.1"}}
    used = plugins.used_plugins(["adder.Add", "ghost.Node", "KSampler"], previous)
    assert used == {"adder": {"version": "3.2", "homepage": "https://example.com/adder"}, "ghost": {"version": "1.0"}}


def test_reload_picks_up_changed_files_in_a_dev_linked_folder(tmp_path):
    folder = make_plugin(tmp_path, "live", amount=1)
    state = PluginState.load()
    from studio.plugins.state import InstallRecord

    state.installed["live"] = InstallRecord(kind="dev", source=str(folder), path=str(folder))
    state.save()
    plugins = manager()
    assert plugins.get("live").origin == "dev" and plugins.get("live").loaded
    assert plugins.changed_plugins() == []
    time.sleep(0.01)
    make_plugin(tmp_path, "live", node="Add2", amount=2)
    (folder / "__init__.py").touch()
    assert plugins.changed_plugins() == ["live"]
    change = plugins.reload("live")
    assert change.removed == ["live.Add"] and change.added == ["live.Add2"]
    assert "live.Add" not in plugins.registry and "live.Add2" in plugins.registry
    result, _ = run_node(plugins, "live.Add2", 1)
    assert result.ok


def test_entry_point_plugins_in_the_app_environment_load(tmp_path, monkeypatch):
    wheel = build_wheel(tmp_path / "wheels", "nuance-test-ep", "0.3", {
        "nuance_test_ep/__init__.py": make_init_named("epglow").replace("nodes=[]", "nodes=[], version='0.3'"),
    }, entry_points={"epglow": "nuance_test_ep:NODE_PACK"})
    site = tmp_path / "site"
    import zipfile

    zipfile.ZipFile(wheel).extractall(site)
    monkeypatch.syspath_prepend(str(site))
    import importlib

    importlib.invalidate_caches()
    plugins = manager()
    plugin = plugins.get("epglow")
    assert plugin is not None and plugin.origin == "entry point" and plugin.loaded, plugin and plugin.error
    assert plugin.version == "0.3"


def test_the_bundled_example_plugin_loads():
    plugins = PluginManager()
    plugins.load_all()
    imagetools = plugins.get("imagetools")
    assert imagetools is not None and imagetools.origin == BUNDLED and imagetools.loaded, imagetools.error
    assert "imagetools.Levels" in plugins.registry
    assert imagetools.gui_module == "nuance_plugins.imagetools.gui"


def test_installing_over_a_bundled_plugin_takes_over_at_once_and_uninstall_brings_it_back(tmp_path):
    from studio.plugins.install import install, uninstall

    bundled = tmp_path / "bundled"
    make_plugin(bundled, "shared", amount=1, version="1.0")
    plugins = manager(bundled)
    assert plugins.get("shared").origin == BUNDLED
    install(str(make_plugin(tmp_path / "src", "shared", node="Newer", amount=10, version="2.0")), trust=True)
    change = plugins.add_installed("shared")
    assert change.removed == ["shared.Add"] and change.added == ["shared.Newer"]
    assert plugins.get("shared").origin == "user" and "shared.Add" not in plugins.registry
    uninstall("shared")
    change = plugins.remove("shared")
    assert change.removed == ["shared.Newer"] and change.added == ["shared.Add"]
    assert plugins.get("shared").origin == BUNDLED and "shared.Add" in plugins.registry


def test_rescan_picks_up_what_the_command_line_changed():
    plugins = manager()
    assert plugins.get("later") is None
    make_plugin(plugins_dir(), "later", amount=4)
    change = plugins.rescan()
    assert change.added == ["later.Add"] and plugins.get("later").loaded and "later.Add" in plugins.registry
    assert plugins.rescan().message.endswith("nothing changed")

    state = PluginState.load()  # `nuance plugins disable later` in another process
    state.disabled.add("later")
    state.save()
    change = plugins.rescan()
    assert change.removed == ["later.Add"] and plugins.get("later").status == DISABLED

    import shutil

    shutil.rmtree(plugins_dir() / "later")  # removed by hand
    plugins.rescan()
    assert plugins.get("later") is None and "later.Add" not in plugins.registry
