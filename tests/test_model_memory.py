"""The model manager: load once, least-recently-used unloading, memory pressure, free memory."""

from __future__ import annotations

import torch

from studio.core.graph import Graph
from studio.engine import Executor
from studio.models import memory
from studio.models.memory import ModelManager


class Loaded:
    def __init__(self, name):
        self.name = name
        self.unet = torch.nn.Linear(2, 2)


def test_a_key_is_loaded_once_and_shared():
    manager = ModelManager()
    calls = []
    first = manager.get(("a",), lambda: calls.append("a") or Loaded("a"))
    again = manager.get(("a",), lambda: calls.append("a") or Loaded("a"))
    assert first is again and calls == ["a"] and manager.loads == 1


def test_least_recently_used_model_is_unloaded_beyond_the_limit():
    manager = ModelManager(max_loaded=2)
    for name in "ab":
        manager.get((name,), lambda name=name: Loaded(name))
    manager.get(("a",), lambda: Loaded("a"))  # a is now the most recently used
    manager.get(("c",), lambda: Loaded("c"))
    calls = []
    manager.get(("a",), lambda: calls.append("a") or Loaded("a"))
    manager.get(("b",), lambda: calls.append("b") or Loaded("b"))
    assert calls == ["b"]  # b was dropped, a was kept


def test_small_files_have_their_own_lru_and_never_push_a_checkpoint_out():
    manager = ModelManager(max_loaded=1, max_small=2)
    manager.get(("ckpt",), lambda: Loaded("ckpt"))
    for name in "xyz":
        manager.get((name,), lambda name=name: Loaded(name), small=True)
    calls = []
    manager.get(("ckpt",), lambda: calls.append("ckpt") or Loaded("ckpt"))
    manager.get(("z",), lambda: calls.append("z") or Loaded("z"), small=True)
    manager.get(("x",), lambda: calls.append("x") or Loaded("x"), small=True)
    assert calls == ["x"]  # the checkpoint and the newest small files stayed; x, the oldest, went
    manager.free_memory()
    assert len(manager) == 0


def test_memory_pressure_unloads_before_loading(monkeypatch):
    manager = ModelManager(max_loaded=5)
    for name in "abc":
        manager.get((name,), lambda name=name: Loaded(name))
    free = {"bytes": 100}

    def fake_available():
        free["bytes"] += 100  # each unload gives memory back
        return free["bytes"]

    monkeypatch.setattr(memory, "available_ram", fake_available)
    manager.get(("big",), lambda: Loaded("big"), size_hint=350)
    assert len(manager) == 2  # a and b went, c stayed, big came


def test_no_pressure_keeps_everything(monkeypatch):
    manager = ModelManager(max_loaded=5)
    monkeypatch.setattr(memory, "available_ram", lambda: 10**12)
    for name in "abc":
        manager.get((name,), lambda name=name: Loaded(name), size_hint=10**9)
    assert len(manager) == 3


def test_use_on_the_cpu_keeps_the_module_where_it_is():
    manager = ModelManager()
    module = torch.nn.Linear(2, 2)
    assert manager.use(module, "cpu") is module
    assert next(module.parameters()).device.type == "cpu"


def test_free_memory_unloads_models_and_drops_cached_outputs(registry, monkeypatch):
    fresh = ModelManager()
    monkeypatch.setattr(memory, "_manager", fresh)
    fresh.get(("x",), lambda: Loaded("x"))
    executor = Executor(registry)
    graph = Graph()
    graph.add_node("PrimitiveInt", {"value": 3}, id="1")
    graph.add_node("PreviewAny", id="2")
    graph.connect("1", 0, "2", "source")
    executor.run(graph)
    assert len(executor.cache) > 0 and len(fresh) == 1
    memory.free_memory(executor)
    assert len(executor.cache) == 0 and len(fresh) == 0
    assert executor.run(graph).count("executed") == 2
