"""Executor overhead on a 1,000-node graph of cheap nodes (chains plus fan-in).

Prints one JSON object. The baseline, ``direct_ms``, calls the same 1,000 node functions
directly in the same order, measured in the same process, so ``per_node_overhead_us`` is what the
engine adds per node (signature, cache, events, bookkeeping), independent of the machine's speed.

Targets (issue 2): ``cached_ms`` < 20 and ``per_node_overhead_us`` < 50 on a 2-core machine.

    python bench/executor.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from studio.core.graph import Graph
from studio.engine import CancelToken, Executor, RunContext, RunOptions
from studio.plugins import create_registry

LEAVES, CHAINS, CHAIN_LENGTH = 10, 10, 80
FAN_IN = 1000 - LEAVES - CHAINS * CHAIN_LENGTH


def build_graph() -> tuple[Graph, str]:
    """10 leaves, 10 chains of 80 additions, then 190 additions gathering points of every chain."""
    graph = Graph()
    leaves = [graph.add_node("PrimitiveInt", {"value": i}).id for i in range(LEAVES)]
    chains: list[list[str]] = []
    for c in range(CHAINS):
        previous = leaves[c]
        chain = []
        for _ in range(CHAIN_LENGTH):
            node = graph.add_node("MathInt", {"b": 1, "operation": "add"})
            graph.connect(previous, 0, node.id, "a")
            previous = node.id
            chain.append(node.id)
        chains.append(chain)
    previous = leaves[0]
    for j in range(FAN_IN):
        source = chains[j % CHAINS][-1] if j < CHAINS else chains[j % CHAINS][(j * 7) % CHAIN_LENGTH]
        node = graph.add_node("MathInt", {"operation": "add"})
        graph.connect(source, 0, node.id, "a")
        graph.connect(previous, 0, node.id, "b")
        previous = node.id
    return graph, previous


def direct_call_ms(graph: Graph, registry: Any, target: str) -> float:
    """The baseline: the same node functions, called in order with their values, nothing else."""
    from studio.core.validate import check_graph

    checked = check_graph(graph, registry, [target])
    ctx = RunContext(0, "bench", "bench", RunOptions(), CancelToken(), lambda event: None)
    plan = []
    for node_id in checked.order:
        spec = checked.specs[node_id]
        links = [(name, link.from_node) for name, link in checked.links_into[node_id].items()]
        plan.append((node_id, spec.cls(), dict(checked.constants[node_id]), links))
    start = time.perf_counter()
    values: dict[str, Any] = {}
    for node_id, node, constants, links in plan:
        kwargs = dict(constants)
        for name, source in links:
            kwargs[name] = values[source]
        values[node_id] = node.run(ctx, **kwargs)
    return (time.perf_counter() - start) * 1000


def timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="measurements per figure (median reported)")
    args = parser.parse_args()

    registry = create_registry()
    graph, target = build_graph()
    leaf = next(iter(graph.nodes))
    assert len(graph) == 1000

    direct, cold, cached, one_change = [], [], [], []
    counter = 1000
    for _ in range(args.repeat):
        direct.append(direct_call_ms(graph, registry, target))
        executor = Executor(registry)
        cold.append(timed(lambda executor=executor: executor.run(graph, [target])))
        cached.append(timed(lambda executor=executor: executor.run(graph, [target])))
        counter += 1
        graph.set_input(leaf, "value", counter)
        one_change.append(timed(lambda executor=executor: executor.run(graph, [target])))

    result = Executor(registry).run(graph, [target])
    assert result.ok and result.count("executed") == 1000, result.status
    executor = Executor(registry)
    executor.run(graph, [target])
    graph.set_input(leaf, "value", counter + 1)
    reran = executor.run(graph, [target]).count("executed")

    nodes = len(graph)
    direct_ms = statistics.median(direct)
    cold_ms = statistics.median(cold)
    cached_ms = statistics.median(cached)
    figures = {
        "nodes": nodes,
        "direct_ms": round(direct_ms, 3),
        "cold_ms": round(cold_ms, 3),
        "cached_ms": round(cached_ms, 3),
        "one_change_ms": round(statistics.median(one_change), 3),
        "one_change_reran_nodes": reran,
        "per_node_overhead_us": round((cold_ms - direct_ms) / nodes * 1000, 2),
        "cold_vs_direct_ratio": round(cold_ms / direct_ms, 2),
        "repeat": args.repeat,
        "targets": {"cached_ms": 20, "per_node_overhead_us": 50},
    }
    figures["meets_targets"] = figures["cached_ms"] < 20 and figures["per_node_overhead_us"] < 50
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
