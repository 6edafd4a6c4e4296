"""The executor: incremental cache, modes, failures, cancellation, events, background runs.

Test-only nodes record every execution in ``CALLS`` (node ids, in order), so each test can say
exactly which nodes ran and which came from the cache.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from studio.api import ANY, Boolean, InputValueError, Int, Node, Output, String
from studio.api import Input as In
from studio.core.graph import Graph
from studio.core.registry import NodeRegistry
from studio.engine import BackgroundRunner, CancelToken, Executor, OutputCache, RunContext, RunOptions
from studio.engine.cache import CacheEntry, estimate_nbytes
from studio.engine.events import (
    NodeCached,
    NodeFailed,
    NodeFinished,
    NodeProgress,
    NodeSkipped,
    NodeStarted,
    RunCancelled,
    RunFinished,
    RunStarted,
)

CALLS: list[str] = []
THREADS: list[threading.Thread] = []
STEPS_DONE: list[int] = []
EXTERNAL: dict[str, object] = {"state": 1}
STARTED = threading.Event()
RELEASE = threading.Event()


# -- test-only nodes ----------------------------------------------------------------------------
class Const(Node):
    NAME = "Const"
    INPUTS = [Int("value", 0)]
    OUTPUTS = [Output("INT", "INT")]

    def run(self, ctx, value):
        CALLS.append(ctx.node_id)
        return value


class Add(Node):
    NAME = "Add"
    INPUTS = [Int("a", 0), Int("b", 0)]
    OUTPUTS = [Output("INT", "INT")]

    def run(self, ctx, a, b):
        CALLS.append(ctx.node_id)
        return a + b


class Sink(Node):
    NAME = "Sink"
    OUTPUT_NODE = True
    INPUTS = [In("value", ANY)]

    def run(self, ctx, value):
        CALLS.append(ctx.node_id)
        THREADS.append(threading.current_thread())
        ctx.show(value=value)


class Bounded(Node):
    NAME = "Bounded"
    INPUTS = [Int("x", 0, min=0, max=10)]
    OUTPUTS = [Output("INT", "INT")]

    def run(self, ctx, x):
        CALLS.append(ctx.node_id)
        return x


class Random(Node):
    NAME = "Random"
    DETERMINISTIC = False
    INPUTS = [Int("value", 0)]
    OUTPUTS = [Output("INT", "INT")]

    def run(self, ctx, value):
        CALLS.append(ctx.node_id)
        return value + len(CALLS)


class External(Node):
    NAME = "External"
    INPUTS = [Int("value", 0)]
    OUTPUTS = [Output("INT", "INT")]

    @classmethod
    def fingerprint(cls, ctx, **inputs):
        return EXTERNAL["state"]

    def run(self, ctx, value):
        CALLS.append(ctx.node_id)
        return value


class Boom(Node):
    NAME = "Boom"
    INPUTS = [Int("x", 0), Boolean("fail", True), Boolean("nuance_error", False)]
    OUTPUTS = [Output("INT", "INT")]

    def run(self, ctx, x, fail, nuance_error):
        CALLS.append(ctx.node_id)
        if fail:
            if nuance_error:
                raise InputValueError(f"x={x} is not acceptable here")
            raise ValueError(f"boom on {x}")
        return x


class Maybe(Node):
    NAME = "Maybe"
    INPUTS = [In("value", ANY, optional=True)]
    OUTPUTS = [Output("value", ANY)]

    def run(self, ctx, value="nothing"):
        CALLS.append(ctx.node_id)
        return value


class Multi(Node):
    """Used bypassed: INT, STRING and IMAGE outputs, but no IMAGE input."""

    NAME = "Multi"
    INPUTS = [Int("a", 0), Int("b", 0), String("s", "")]
    OUTPUTS = [Output("n", "INT"), Output("text", "STRING"), Output("img", "IMAGE")]

    def run(self, ctx, a, b, s):
        CALLS.append(ctx.node_id)
        return a * 1000, s.upper(), None


class Steps(Node):
    NAME = "Steps"
    INPUTS = [Int("x", 0), Int("steps", 10)]
    OUTPUTS = [Output("INT", "INT")]

    def run(self, ctx, x, steps):
        CALLS.append(ctx.node_id)
        for i in range(steps):
            ctx.progress(i, steps)
            STEPS_DONE.append(i)
        return x + steps


class Wait(Node):
    """Blocks (as a long sampler would) until RELEASE is set or the run is cancelled."""

    NAME = "Wait"
    DETERMINISTIC = False
    INPUTS = [Int("value", 0)]
    OUTPUTS = [Output("INT", "INT")]

    def run(self, ctx, value):
        CALLS.append(ctx.node_id)
        STARTED.set()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not RELEASE.wait(0.005):
            ctx.progress(0)
        return value


class Array(Node):
    NAME = "Array"
    INPUTS = [Int("size", 1000), Int("tag", 0)]
    OUTPUTS = [Output("array", "ARRAY")]

    def run(self, ctx, size, tag):
        CALLS.append(ctx.node_id)
        return np.full(size, tag % 256, dtype=np.uint8)


class Writer(Node):
    NAME = "Writer"
    OUTPUT_NODE = True
    INPUTS = [String("prefix", "note"), String("text", "")]

    def run(self, ctx, prefix, text):
        CALLS.append(ctx.node_id)
        path = ctx.reserve_output_file(prefix, "txt")
        path.write_text(text, encoding="utf-8")


class Pair(Node):
    NAME = "Pair"
    INPUTS = [Int("count", 2), Boolean("as_list", False), Boolean("as_dict", False)]
    OUTPUTS = [Output("first", "INT"), Output("second", "INT")]

    def run(self, ctx, count, as_list, as_dict):
        CALLS.append(ctx.node_id)
        if as_dict:
            return {"second": 20, "first": 10}
        values = list(range(1, count + 1))
        return values if as_list else tuple(values)


class Checked(Node):
    NAME = "Checked"
    INPUTS = [Int("low", 0), Int("high", 10), Boolean("many", False)]
    OUTPUTS = [Output("INT", "INT")]

    @classmethod
    def validate(cls, low, high, many):
        if many:
            return ["first problem", "second problem"]
        if low > high:
            return f"low ({low}) must not exceed high ({high})"
        return None

    def run(self, ctx, low, high, many):
        CALLS.append(ctx.node_id)
        return high - low


TEST_NODES = [Const, Add, Sink, Bounded, Random, External, Boom, Maybe, Multi, Steps, Wait, Array, Writer, Pair, Checked]


@pytest.fixture(autouse=True)
def _reset_state():
    CALLS.clear()
    THREADS.clear()
    STEPS_DONE.clear()
    EXTERNAL["state"] = 1
    STARTED.clear()
    RELEASE.clear()
    yield
    RELEASE.set()  # never leave a background run blocked


@pytest.fixture
def reg():
    registry = NodeRegistry()
    for cls in TEST_NODES:
        registry.register(cls)
    return registry


@pytest.fixture
def out_dir(tmp_path):
    return tmp_path / "out"


@pytest.fixture
def executor(reg, out_dir):
    return Executor(reg, options=RunOptions(output_dir=out_dir))


@pytest.fixture
def runner(executor):
    background = BackgroundRunner(executor)
    yield background
    RELEASE.set()
    background.shutdown()


def statuses(result):
    return {node_id: record.status for node_id, record in result.nodes.items()}


def with_status(result, status):
    return {node_id for node_id, record in result.nodes.items() if record.status == status}


def diamond(ids=("s", "l", "r", "j", "out", "k", "out2"), *, left_b=10):
    """s → l, s → r, (l, r) → j → out; plus an independent branch k → out2."""
    s, left, right, j, out, k, out2 = ids
    g = Graph()
    g.add_node("Const", {"value": 1}, id=s)
    g.add_node("Add", {"b": left_b}, id=left)
    g.add_node("Add", {"b": 100}, id=right)
    g.add_node("Add", id=j)
    g.add_node("Sink", id=out)
    g.add_node("Const", {"value": 5}, id=k)
    g.add_node("Sink", id=out2)
    g.connect(s, 0, left, "a")
    g.connect(s, 0, right, "a")
    g.connect(left, 0, j, "a")
    g.connect(right, 0, j, "b")
    g.connect(j, 0, out, "value")
    g.connect(k, 0, out2, "value")
    return g


# -- incremental cache ----------------------------------------------------------------------------
def test_first_run_executes_every_node_once(executor):
    result = executor.run(diamond())
    assert result.ok and result.status == "succeeded"
    assert sorted(CALLS) == sorted(["s", "l", "r", "j", "out", "k", "out2"])
    assert set(statuses(result).values()) == {"executed"}
    assert result.nodes["out"].ui == {"value": (1 + 10) + (1 + 100)}
    assert result.nodes["out2"].ui == {"value": 5}


def test_second_run_with_nothing_changed_executes_nothing(executor):
    graph = diamond()
    executor.run(graph)
    CALLS.clear()
    result = executor.run(graph)
    assert result.ok
    assert CALLS == []
    assert set(statuses(result).values()) == {"cached"}
    assert result.count("cached") == 7
    assert result.nodes["out"].ui == {"value": 112}


def test_changing_one_constant_reruns_exactly_that_node_and_its_descendants(executor):
    graph = diamond()
    executor.run(graph)
    CALLS.clear()
    graph.set_input("l", "b", 20)
    result = executor.run(graph)
    assert with_status(result, "executed") == {"l", "j", "out"}
    assert with_status(result, "cached") == {"s", "r", "k", "out2"}
    assert sorted(CALLS) == ["j", "l", "out"]
    assert result.nodes["out"].ui == {"value": (1 + 20) + (1 + 100)}


def test_changing_the_shared_source_reruns_both_sides_of_the_diamond(executor):
    graph = diamond()
    executor.run(graph)
    CALLS.clear()
    graph.set_input("s", "value", 2)
    result = executor.run(graph)
    assert with_status(result, "executed") == {"s", "l", "r", "j", "out"}
    assert with_status(result, "cached") == {"k", "out2"}
    assert CALLS.count("j") == 1  # the fan-in node runs once, not once per changed input
    assert result.nodes["out"].ui == {"value": 12 + 102}


def test_changing_a_value_back_is_served_from_the_cache(executor):
    graph = diamond()
    executor.run(graph)
    graph.set_input("l", "b", 20)
    executor.run(graph)
    CALLS.clear()
    graph.set_input("l", "b", 10)
    result = executor.run(graph)
    assert CALLS == []
    assert result.nodes["out"].ui == {"value": 112}


def test_int_and_float_and_string_constants_are_different_cache_keys(reg, executor):
    reg.register(type("Echo", (Node,), {
        "NAME": "Echo", "INPUTS": [In("v", ANY)], "OUTPUTS": [Output("v", ANY)],
        "run": lambda self, ctx, v: (CALLS.append(ctx.node_id), v)[1],
    }))
    graph = Graph()
    graph.add_node("Echo", {"v": 1}, id="e")
    seen = []
    for value in (1, 1.0, True, "1"):
        graph.set_input("e", "v", value)
        result = executor.run(graph, targets=["e"])
        seen.append(result.outputs["e"][0])
    assert CALLS == ["e"] * 4
    assert [type(v) for v in seen] == [int, float, bool, str]


def test_cache_survives_switching_to_another_graph_with_other_node_ids(executor):
    executor.run(diamond())
    CALLS.clear()
    other = diamond(ids=("10", "11", "12", "13", "14", "15", "16"))
    result = executor.run(other)
    assert CALLS == []
    assert set(statuses(result)) == {"10", "11", "12", "13", "14", "15", "16"}
    assert set(statuses(result).values()) == {"cached"}
    assert result.nodes["14"].ui == {"value": 112}
    # a change in the new graph still re-runs exactly what depends on it
    other.set_input("15", "value", 6)
    result = executor.run(other)
    assert with_status(result, "executed") == {"15", "16"}


def test_identical_nodes_in_one_graph_share_one_execution(executor):
    graph = Graph()
    for node_id in ("a", "b"):
        graph.add_node("Const", {"value": 3}, id=node_id)
        graph.add_node("Sink", id=f"sink_{node_id}")
        graph.connect(node_id, 0, f"sink_{node_id}", "value")
    result = executor.run(graph)
    assert result.ok
    assert CALLS.count("a") + CALLS.count("b") == 1
    assert result.nodes["sink_a"].ui == result.nodes["sink_b"].ui == {"value": 3}


def test_free_memory_forgets_every_cached_result(executor):
    graph = diamond()
    executor.run(graph)
    executor.free_memory()
    CALLS.clear()
    result = executor.run(graph)
    assert len(CALLS) == 7
    assert result.count("executed") == 7


def test_non_deterministic_nodes_always_run_and_so_do_their_dependants(executor):
    graph = Graph()
    graph.add_node("Const", {"value": 1}, id="c")
    graph.add_node("Random", id="rnd")
    graph.add_node("Sink", id="out")
    graph.connect("c", 0, "rnd", "value")
    graph.connect("rnd", 0, "out", "value")
    first = executor.run(graph)
    CALLS.clear()
    second = executor.run(graph)
    assert with_status(second, "executed") == {"rnd", "out"}
    assert with_status(second, "cached") == {"c"}
    assert CALLS == ["rnd", "out"]
    assert first.nodes["out"].ui != second.nodes["out"].ui


def test_fingerprint_change_forces_a_rerun(executor):
    graph = Graph()
    graph.add_node("External", {"value": 4}, id="ext")
    graph.add_node("Sink", id="out")
    graph.connect("ext", 0, "out", "value")
    executor.run(graph)
    CALLS.clear()
    executor.run(graph)
    assert CALLS == []  # same fingerprint: cached
    EXTERNAL["state"] = 2
    result = executor.run(graph)
    assert CALLS == ["ext", "out"]  # the signature changed, so what depends on it runs too
    assert with_status(result, "executed") == {"ext", "out"}
    CALLS.clear()
    EXTERNAL["state"] = b"\x00\x01"  # bytes fingerprints are accepted too
    result = executor.run(graph)
    assert "ext" in CALLS and result.ok


# -- modes -----------------------------------------------------------------------------------------
def test_muted_node_is_not_run_and_its_dependants_are_skipped(executor):
    graph = diamond()
    graph.set_mode("l", "muted")
    events = []
    result = executor.run(graph, listener=events.append)
    assert result.status == "succeeded"
    assert "l" not in CALLS and "j" not in CALLS and "out" not in CALLS
    assert {"s", "r", "k", "out2"} <= set(CALLS)
    assert result.nodes["l"].status == "skipped" and result.nodes["l"].reason == "muted"
    assert result.nodes["j"].status == "skipped"
    assert "node l (Add)" in result.nodes["j"].reason and "muted" in result.nodes["j"].reason
    assert result.nodes["out"].status == "skipped"
    assert "node j (Add)" in result.nodes["out"].reason
    skipped = {e.node_id: e.reason for e in events if isinstance(e, NodeSkipped)}
    assert skipped["l"] == "muted" and set(skipped) == {"l", "j", "out"}


def test_muted_node_is_not_checked_for_missing_inputs(executor):
    graph = Graph()
    graph.add_node("Const", {"value": 1}, id="c")
    graph.add_node("Sink", id="muted_sink", mode="muted")  # its required input is not connected
    graph.add_node("Sink", id="out")
    graph.connect("c", 0, "out", "value")
    result = executor.run(graph)
    assert result.ok
    assert "muted_sink" not in result.nodes  # a muted output node is not a target


def test_optional_input_wired_to_a_muted_node_counts_as_unwired(executor):
    graph = Graph()
    graph.add_node("Const", {"value": 1}, id="c", mode="muted")
    graph.add_node("Maybe", id="maybe")
    graph.add_node("Sink", id="out")
    graph.connect("c", 0, "maybe", "value")
    graph.connect("maybe", 0, "out", "value")
    result = executor.run(graph)
    assert result.ok
    assert result.nodes["maybe"].status == "executed"
    assert result.nodes["out"].ui == {"value": "nothing"}
    graph.set_mode("c", "normal")
    result = executor.run(graph)
    assert result.nodes["out"].ui == {"value": 1}  # un-muting changes the cache key
    graph.set_mode("c", "muted")
    CALLS.clear()
    assert executor.run(graph).nodes["out"].ui == {"value": "nothing"}
    assert CALLS == []  # muted again: served from the cache


def bypass_graph():
    graph = Graph()
    graph.add_node("Const", {"value": 3}, id="ca")
    graph.add_node("Multi", {"b": 7, "s": "hi"}, id="m", mode="bypassed")
    graph.add_node("Sink", id="sink_n")
    graph.add_node("Sink", id="sink_s")
    graph.add_node("Sink", id="sink_img")
    graph.connect("ca", 0, "m", "a")
    graph.connect("m", 0, "sink_n", "value")
    graph.connect("m", 1, "sink_s", "value")
    graph.connect("m", 2, "sink_img", "value")
    return graph


def test_bypassed_node_passes_its_first_input_of_each_output_type_through(executor):
    result = executor.run(bypass_graph())
    assert result.status == "succeeded"
    assert "m" not in CALLS
    assert result.nodes["m"].status == "skipped" and result.nodes["m"].reason == "bypassed"
    assert result.nodes["sink_n"].ui == {"value": 3}  # a (wired), not b and not a * 1000
    assert result.nodes["sink_s"].ui == {"value": "hi"}  # s as given, not upper-cased


def test_bypassed_output_with_no_matching_input_skips_its_dependants(executor):
    result = executor.run(bypass_graph())
    record = result.nodes["sink_img"]
    assert record.status == "skipped"
    assert "node m (Multi)" in record.reason and "bypassed" in record.reason and "IMAGE" in record.reason
    assert "sink_img" not in CALLS


def test_bypassed_output_with_nothing_to_pass_counts_as_unwired_for_optional_inputs(executor):
    graph = bypass_graph()
    graph.add_node("Maybe", id="maybe")
    graph.add_node("Sink", id="maybe_out")
    graph.connect("m", 2, "maybe", "value")
    graph.connect("maybe", 0, "maybe_out", "value")
    result = executor.run(graph)
    assert result.ok
    assert result.nodes["maybe_out"].ui == {"value": "nothing"}


def test_bypassed_pass_through_keeps_the_cache_keys_of_what_it_passes(executor):
    graph = bypass_graph()
    executor.run(graph)
    CALLS.clear()
    graph.set_input("m", "b", 8)  # not passed through: nothing downstream changes
    result = executor.run(graph)
    assert CALLS == []
    assert with_status(result, "cached") == {"ca", "sink_n", "sink_s"}
    graph.set_input("m", "s", "there")
    result = executor.run(graph)
    assert CALLS == ["sink_s"]
    assert result.nodes["sink_s"].ui == {"value": "there"}


def test_unbypassing_runs_the_node(executor):
    graph = bypass_graph()
    executor.run(graph)
    graph.set_mode("m", "normal")
    result = executor.run(graph)
    assert "m" in CALLS
    assert result.nodes["sink_n"].ui == {"value": 3000}
    assert result.nodes["sink_s"].ui == {"value": "HI"}


# -- failures --------------------------------------------------------------------------------------
def failing_graph(fail=True):
    """c → boom → after → out, and an independent branch k → out2."""
    graph = Graph()
    graph.add_node("Const", {"value": 2}, id="c")
    graph.add_node("Boom", {"fail": fail}, id="boom")
    graph.add_node("Add", {"b": 1}, id="after")
    graph.add_node("Sink", id="out")
    graph.add_node("Const", {"value": 9}, id="k")
    graph.add_node("Sink", id="out2")
    graph.connect("c", 0, "boom", "x")
    graph.connect("boom", 0, "after", "a")
    graph.connect("after", 0, "out", "value")
    graph.connect("k", 0, "out2", "value")
    return graph


def test_failing_node_fails_the_run_with_its_id_type_and_message(executor):
    events = []
    result = executor.run(failing_graph(), listener=events.append)
    assert result.status == "failed" and not result.ok
    record = result.nodes["boom"]
    assert (record.node_id, record.node_type, record.status) == ("boom", "Boom", "failed")
    assert record.error == "ValueError: boom on 2"
    assert "Traceback" in record.traceback and "boom on 2" in record.traceback
    assert result.failures == [record]
    failed = [e for e in events if isinstance(e, NodeFailed)]
    assert [(e.node_id, e.node_type) for e in failed] == [("boom", "Boom")]
    assert "boom on 2" in failed[0].message
    finished = [e for e in events if isinstance(e, RunFinished)]
    assert [e.status for e in finished] == ["failed"]


def test_project_errors_are_reported_without_the_exception_class(executor):
    graph = failing_graph()
    graph.set_input("boom", "nuance_error", True)
    result = executor.run(graph)
    assert result.nodes["boom"].error == "x=2 is not acceptable here"


def test_dependants_of_a_failed_node_are_skipped_and_independent_branches_run(executor):
    result = executor.run(failing_graph())
    assert result.nodes["after"].status == "skipped"
    assert "node boom (Boom)" in result.nodes["after"].reason and "failed" in result.nodes["after"].reason
    assert result.nodes["out"].status == "skipped"
    assert "after" not in CALLS and "out" not in CALLS
    assert with_status(result, "executed") == {"c", "k", "out2"}
    assert result.nodes["out2"].ui == {"value": 9}


def test_a_node_wired_to_a_failed_node_through_an_optional_input_is_skipped(executor):
    """The input is connected, so the node needs the failed value: running it as if the input
    were unconnected would hide the real failure behind a second, misleading one."""
    graph = failing_graph()
    graph.add_node("Maybe", id="maybe")
    graph.add_node("Sink", id="maybe_out")
    graph.connect("boom", 0, "maybe", "value")
    graph.connect("maybe", 0, "maybe_out", "value")
    result = executor.run(graph)
    assert result.nodes["maybe"].status == "skipped"
    assert "node boom (Boom)" in result.nodes["maybe"].reason
    assert "maybe" not in CALLS


def test_skips_caused_by_a_failure_propagate_through_optional_inputs(executor):
    graph = failing_graph()  # boom fails, so "after" is skipped
    graph.add_node("Maybe", id="maybe")
    graph.add_node("Sink", id="maybe_out")
    graph.connect("after", 0, "maybe", "value")
    graph.connect("maybe", 0, "maybe_out", "value")
    result = executor.run(graph)
    assert result.nodes["maybe"].status == "skipped"
    assert "node after (Add)" in result.nodes["maybe"].reason
    assert result.nodes["maybe_out"].status == "skipped"


def test_after_fixing_a_failure_only_the_failed_part_runs_again(executor):
    graph = failing_graph(fail=True)
    executor.run(graph)
    CALLS.clear()
    graph.set_input("boom", "fail", False)
    result = executor.run(graph)
    assert result.ok
    assert with_status(result, "executed") == {"boom", "after", "out"}
    assert with_status(result, "cached") == {"c", "k", "out2"}
    assert result.nodes["out"].ui == {"value": 3}


def test_a_failure_is_not_cached(executor):
    graph = failing_graph()
    executor.run(graph)
    CALLS.clear()
    result = executor.run(graph)
    assert CALLS == ["boom"]
    assert result.nodes["boom"].status == "failed"


def test_linked_value_out_of_range_fails_that_node_with_a_message(executor):
    graph = Graph()
    graph.add_node("Const", {"value": 5}, id="c")
    graph.add_node("Bounded", id="bounded")
    graph.connect("c", 0, "bounded", "x")
    assert executor.run(graph, targets=["bounded"]).ok
    graph.set_input("c", "value", 11)
    result = executor.run(graph, targets=["bounded"])
    assert result.status == "failed"
    record = result.nodes["bounded"]
    assert record.status == "failed"
    assert record.error == "input 'x': 11 is above the maximum 10"
    assert CALLS.count("bounded") == 1  # the out-of-range run never reached run()


def test_wrong_number_of_outputs_fails_with_a_clear_message(executor):
    graph = Graph()
    graph.add_node("Pair", {"count": 3}, id="p")
    result = executor.run(graph, targets=["p"])
    assert result.nodes["p"].status == "failed"
    assert "returned 3 values" in result.nodes["p"].error
    assert "declares 2 outputs" in result.nodes["p"].error


def test_non_tuple_result_for_several_outputs_fails_with_a_clear_message(executor):
    graph = Graph()
    graph.add_node("Pair", {"as_list": True}, id="p")
    result = executor.run(graph, targets=["p"])
    assert result.nodes["p"].status == "failed"
    assert "returned list" in result.nodes["p"].error and "tuple" in result.nodes["p"].error


def test_tuple_and_dict_results_map_to_outputs(executor):
    graph = Graph()
    graph.add_node("Pair", id="p")
    graph.add_node("Pair", {"as_dict": True}, id="q")
    result = executor.run(graph, targets=["p", "q"])
    assert result.ok
    assert result.outputs["p"] == (1, 2)
    assert result.outputs["q"] == (10, 20)


def test_validate_hook_message_fails_the_node(executor):
    graph = Graph()
    graph.add_node("Checked", {"low": 5, "high": 1}, id="chk")
    graph.add_node("Sink", id="out")
    graph.connect("chk", 0, "out", "value")
    result = executor.run(graph)
    assert result.status == "failed"
    assert result.nodes["chk"].status == "failed"
    assert result.nodes["chk"].error == "low (5) must not exceed high (1)"
    assert "chk" not in CALLS
    assert result.nodes["out"].status == "skipped"
    graph.set_input("chk", "many", True)
    result = executor.run(graph)
    assert result.nodes["chk"].error == "first problem; second problem"
    graph.set_input("chk", "many", False)
    graph.set_input("chk", "low", 0)
    result = executor.run(graph)
    assert result.ok and result.nodes["out"].ui == {"value": 1}


def test_a_broken_listener_does_not_break_the_run(executor):
    def listener(event):
        raise RuntimeError("listener bug")

    result = executor.run(diamond(), listener=listener)
    assert result.ok and result.count("executed") == 7


# -- cancellation ------------------------------------------------------------------------------------
def steps_graph():
    graph = Graph()
    graph.add_node("Const", {"value": 1}, id="c")
    graph.add_node("Steps", {"steps": 10}, id="st")
    graph.add_node("Sink", id="out")
    graph.connect("c", 0, "st", "x")
    graph.connect("st", 0, "out", "value")
    return graph


def test_cancel_from_a_progress_listener_stops_within_that_step(executor):
    token = CancelToken()
    events = []

    def listener(event):
        events.append(event)
        if isinstance(event, NodeProgress) and event.value == 3:
            token.cancel()

    result = executor.run(steps_graph(), listener=listener, cancel=token)
    assert result.status == "cancelled" and not result.ok
    assert STEPS_DONE == [0, 1, 2, 3]
    assert result.nodes["c"].status == "executed"
    assert result.nodes["st"].status == "skipped" and "cancelled" in result.nodes["st"].reason
    assert result.nodes["out"].status == "skipped" and "cancelled" in result.nodes["out"].reason
    assert "out" not in CALLS
    kinds = [type(e) for e in events]
    assert kinds[-1] is RunCancelled
    assert RunFinished not in kinds
    assert not any(isinstance(e, NodeFinished) and e.node_id == "st" for e in events)
    progress = [(e.node_id, e.value, e.total) for e in events if isinstance(e, NodeProgress)]
    assert progress == [("st", float(i), 10) for i in range(4)]


def test_a_cancelled_node_is_not_cached(executor):
    token = CancelToken()

    def listener(event):
        if isinstance(event, NodeProgress) and event.value == 2:
            token.cancel()

    graph = steps_graph()
    executor.run(graph, listener=listener, cancel=token)
    CALLS.clear()
    STEPS_DONE.clear()
    result = executor.run(graph)
    assert result.ok
    assert STEPS_DONE == list(range(10))
    assert with_status(result, "executed") == {"st", "out"}
    assert with_status(result, "cached") == {"c"}
    assert result.nodes["out"].ui == {"value": 11}


def test_cancelled_before_start_runs_nothing(executor):
    token = CancelToken()
    token.cancel()
    events = []
    result = executor.run(steps_graph(), cancel=token, listener=events.append)
    assert result.status == "cancelled"
    assert CALLS == []
    assert set(statuses(result).values()) == {"skipped"}
    assert [type(e) for e in events] == [RunStarted, RunCancelled]


# -- background runs ---------------------------------------------------------------------------------
def wait_graph(value=1):
    graph = Graph()
    graph.add_node("Wait", {"value": value}, id="w")
    graph.add_node("Sink", id="out")
    graph.connect("w", 0, "out", "value")
    return graph


def test_background_run_happens_on_another_thread(runner):
    handle = runner.submit(diamond())
    result = handle.result(timeout=10)
    assert result.ok and handle.done()
    assert THREADS and all(t is not threading.main_thread() for t in THREADS)
    assert all(t.name.startswith("nuance-run") for t in THREADS)


def test_run_handle_cancel_stops_a_running_run(runner):
    handle = runner.submit(wait_graph())
    assert STARTED.wait(5)
    handle.cancel()
    result = handle.result(timeout=5)
    assert handle.cancelled
    assert result.status == "cancelled"
    assert result.nodes["w"].status == "skipped"
    assert result.nodes["out"].status == "skipped"
    assert "out" not in CALLS


def test_queued_run_snapshots_the_graph_and_a_cancelled_queued_run_never_starts(runner):
    blocker = runner.submit(wait_graph())
    assert STARTED.wait(5)
    graph = Graph()
    graph.add_node("Const", {"value": 1}, id="queued")
    graph.add_node("Sink", id="queued_out")
    graph.connect("queued", 0, "queued_out", "value")
    queued = runner.submit(graph)
    graph.set_input("queued", "value", 2)  # edited after submit: must not affect the queued run
    graph.remove_node("queued_out")
    never = runner.submit(diamond(ids=("n1", "n2", "n3", "n4", "n5", "n6", "n7")))
    never.cancel()
    RELEASE.set()
    assert blocker.result(timeout=5).ok
    result = queued.result(timeout=5)
    assert result.ok
    assert result.nodes["queued_out"].ui == {"value": 1}
    assert never.cancelled and never.done()
    with pytest.raises(concurrent.futures.CancelledError):
        never.result(timeout=5)
    assert not any(node_id.startswith("n") for node_id in CALLS)


def test_background_run_reports_an_invalid_graph_from_result(runner):
    from studio.core.errors import GraphValidationError

    graph = Graph()
    graph.add_node("Sink", id="out")  # required input not connected
    handle = runner.submit(graph)
    with pytest.raises(GraphValidationError):
        handle.result(timeout=5)


# -- events ------------------------------------------------------------------------------------------
def test_event_order_for_a_simple_run_and_cached_events_on_the_second(executor):
    graph = Graph()
    graph.add_node("Const", {"value": 1}, id="1")
    graph.add_node("Sink", id="2")
    graph.connect("1", 0, "2", "value")
    events = []
    result = executor.run(graph, listener=events.append)
    assert [(type(e), getattr(e, "node_id", None)) for e in events] == [
        (RunStarted, None),
        (NodeStarted, "1"), (NodeFinished, "1"),
        (NodeStarted, "2"), (NodeFinished, "2"),
        (RunFinished, None),
    ]
    assert events[0].node_ids == ("1", "2")
    assert {e.run_id for e in events} == {result.run_id}
    assert events[-1].status == "succeeded"
    assert events[2].node_type == "Const"
    assert events[4].ui == {"value": 1}

    events.clear()
    second = executor.run(graph, listener=events.append)
    assert second.run_id != result.run_id
    assert [(type(e), getattr(e, "node_id", None)) for e in events] == [
        (RunStarted, None), (NodeCached, "1"), (NodeCached, "2"), (RunFinished, None),
    ]
    assert second.nodes["2"].ui == {"value": 1}  # what the output node showed comes from the cache


# -- the output cache ----------------------------------------------------------------------------------
def array_entry(size):
    array = np.zeros(size, dtype=np.uint8)
    return CacheEntry((array,), nbytes=estimate_nbytes(array))


def test_estimate_nbytes_uses_the_nbytes_attribute():
    assert estimate_nbytes(np.zeros(1234, dtype=np.uint8)) == 1234
    assert estimate_nbytes(np.zeros((10, 10), dtype=np.float32)) == 400


def test_output_cache_evicts_least_recently_used_first():
    cache = OutputCache(max_bytes=3000)
    assert cache.put(b"a", array_entry(1000))
    assert cache.put(b"b", array_entry(1000))
    assert cache.put(b"c", array_entry(1000))
    assert cache.bytes == 3000 and len(cache) == 3
    assert cache.get(b"a") is not None  # a is now the most recently used
    assert cache.put(b"d", array_entry(1000))
    assert b"b" not in cache
    assert all(key in cache for key in (b"a", b"c", b"d"))
    assert cache.bytes == 3000 and cache.evictions == 1
    assert cache.put(b"e", array_entry(2000))
    assert b"c" not in cache and b"a" not in cache
    assert set(cache._entries) == {b"d", b"e"}
    assert cache.bytes == 3000 and cache.evictions == 3


def test_output_cache_refuses_an_entry_larger_than_the_budget():
    cache = OutputCache(max_bytes=3000)
    cache.put(b"a", array_entry(1000))
    assert cache.put(b"huge", array_entry(3001)) is False
    assert b"huge" not in cache
    assert b"a" in cache and cache.bytes == 1000 and cache.evictions == 0


def test_output_cache_replacing_a_key_does_not_count_it_twice():
    cache = OutputCache(max_bytes=3000)
    cache.put(b"a", array_entry(1000))
    cache.put(b"a", array_entry(2500))
    assert len(cache) == 1 and cache.bytes == 2500
    assert cache.put(b"a", array_entry(5000)) is False
    assert b"a" not in cache and cache.bytes == 0


def test_output_cache_shrinking_the_budget_evicts():
    cache = OutputCache(max_bytes=3000)
    for key in (b"a", b"b", b"c"):
        cache.put(key, array_entry(1000))
    cache.max_bytes = 1500
    assert set(cache._entries) == {b"c"} and cache.bytes == 1000


def test_executor_cache_is_bounded_in_bytes(reg):
    entry_bytes = 64 + 1000  # what the executor counts for one 1000-byte array output
    executor = Executor(reg, cache=OutputCache(max_bytes=2 * entry_bytes))
    graph = Graph()
    graph.add_node("Array", {"size": 1000, "tag": 1}, id="arr")

    def run(tag):
        graph.set_input("arr", "tag", tag)
        CALLS.clear()
        result = executor.run(graph, targets=["arr"])
        assert result.ok and int(result.outputs["arr"][0][0]) == tag
        return result.nodes["arr"].status

    assert run(1) == "executed"
    assert run(2) == "executed"
    assert run(1) == "cached"  # 1 becomes the most recently used
    assert run(3) == "executed"  # evicts 2, the least recently used
    assert executor.cache.bytes <= 2 * entry_bytes
    assert run(1) == "cached"
    assert run(2) == "executed"


def test_executor_does_not_cache_an_output_larger_than_the_budget(reg):
    executor = Executor(reg, cache=OutputCache(max_bytes=5000))
    graph = Graph()
    graph.add_node("Array", {"size": 10_000}, id="arr")
    assert executor.run(graph, targets=["arr"]).ok
    result = executor.run(graph, targets=["arr"])
    assert result.ok and result.nodes["arr"].status == "executed"
    assert CALLS == ["arr", "arr"]
    assert len(executor.cache) == 0


# -- output files --------------------------------------------------------------------------------------
def make_ctx(output_dir):
    return RunContext(1, "7", "Writer", RunOptions(output_dir=output_dir), CancelToken(), lambda event: None)


def test_reserve_output_file_never_overwrites(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "note_00001_.txt").write_text("precious")
    (out / "note_00007_.txt").write_text("precious too")
    ctx = make_ctx(out)
    first = ctx.reserve_output_file("note", "txt")
    second = ctx.reserve_output_file("note", ".txt")
    assert first.name == "note_00008_.txt" and second.name == "note_00009_.txt"
    assert first.exists() and first.read_text() == ""
    assert (out / "note_00001_.txt").read_text() == "precious"
    assert (out / "note_00007_.txt").read_text() == "precious too"
    assert ctx.files == [str(first.resolve()), str(second.resolve())]


def test_reserve_output_file_allows_sub_folders(tmp_path):
    ctx = make_ctx(tmp_path / "out")
    path = ctx.reserve_output_file("portraits/face", "txt")
    assert path == (tmp_path / "out" / "portraits" / "face_00001_.txt").resolve()
    assert path.exists()


@pytest.mark.parametrize("prefix", ["../escape", "sub/../../escape", "/tmp/elsewhere/x"])
def test_reserve_output_file_refuses_prefixes_leaving_the_output_folder(tmp_path, prefix):
    out = tmp_path / "out"
    ctx = make_ctx(out)
    with pytest.raises(ValueError, match="outside the output folder"):
        ctx.reserve_output_file(prefix, "txt")
    assert not any(tmp_path.rglob("escape*")) and ctx.files == []


def test_run_result_lists_saved_files(executor, out_dir):
    graph = Graph()
    graph.add_node("Writer", {"prefix": "a", "text": "one"}, id="w1")
    graph.add_node("Writer", {"prefix": "sub/b", "text": "two"}, id="w2")
    result = executor.run(graph)
    assert result.ok
    expected = [str((out_dir / "a_00001_.txt").resolve()), str((out_dir / "sub" / "b_00001_.txt").resolve())]
    assert sorted(result.files) == sorted(expected)
    assert result.nodes["w1"].files == (expected[0],)
    assert (out_dir / "sub" / "b_00001_.txt").read_text() == "two"


def test_escaping_prefix_fails_the_node(executor, tmp_path):
    graph = Graph()
    graph.add_node("Writer", {"prefix": "../../oops", "text": "x"}, id="w")
    result = executor.run(graph)
    assert result.status == "failed"
    assert "outside the output folder" in result.nodes["w"].error
    assert result.files == []
    assert not list(tmp_path.rglob("oops*"))


def test_nodes_downstream_of_a_non_deterministic_node_are_not_stored(executor):
    graph = Graph()
    graph.add_node("Random", {"value": 1}, id="rnd")
    graph.add_node("Add", {"b": 1}, id="after")
    graph.add_node("Sink", id="out")
    graph.connect("rnd", 0, "after", "a")
    graph.connect("after", 0, "out", "value")
    executor.run(graph)
    # Nothing of this chain could ever be hit again, so none of it takes cache space.
    assert len(executor.cache) == 0


def test_a_cached_output_whose_file_was_deleted_runs_again(executor, out_dir):
    graph = Graph()
    graph.add_node("Writer", {"prefix": "keep", "text": "one"}, id="w")
    first = executor.run(graph)
    again = executor.run(graph)
    assert again.nodes["w"].status == "cached" and again.files == first.files
    for path in first.files:
        Path(path).unlink()
    third = executor.run(graph)
    assert third.nodes["w"].status == "executed"
    assert all(Path(p).read_text() == "one" for p in third.files)


@pytest.mark.parametrize("prefix", [".", "a/.", "a/..", "sub/"])
def test_reserve_output_file_needs_a_file_name_at_the_end(tmp_path, prefix):
    with pytest.raises(ValueError, match="must end with a file name"):
        make_ctx(tmp_path / "out").reserve_output_file(prefix, "txt")


def test_shutdown_cancels_the_running_run(runner):
    handle = runner.submit(wait_graph())
    assert STARTED.wait(5)
    stopper = threading.Thread(target=runner.shutdown)
    stopper.start()  # RELEASE is never set: only the cancellation can end the Wait node
    stopper.join(5)
    assert not stopper.is_alive()
    assert handle.result(5).status == "cancelled"
