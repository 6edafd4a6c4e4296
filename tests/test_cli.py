"""The ``nuance`` command line, called in-process through ``main(argv)``, plus two subprocess smokes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from studio.cli import main
from studio.runtime import load_plugins

HELLO_TEXT = "Hello, world! 6 × 7 = 42"


@pytest.fixture
def out_dir(tmp_path):
    return tmp_path / "out"


def write_workflow(path, nodes, links=()):
    data = {
        "format": "nuance.workflow", "version": 1,
        "graph": {
            "nodes": nodes,
            "links": [
                {"id": str(i), "from_node": f, "from_output": o, "to_node": t, "to_input": name}
                for i, (f, o, t, name) in enumerate(links, 1)
            ],
        },
    }
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture
def bool_workflow(tmp_path):
    """1 (PrimitiveBoolean) → 2 (PreviewAny)."""
    return write_workflow(tmp_path / "bool.json", [
        {"id": "1", "type": "PrimitiveBoolean", "inputs": {"value": False}},
        {"id": "2", "type": "PreviewAny"},
    ], [("1", 0, "2", "source")])


@pytest.fixture
def text_workflow(tmp_path):
    """1 (PrimitiveString) → 2 (StringReplace find=",") → 3 (PreviewAny)."""
    return write_workflow(tmp_path / "text.json", [
        {"id": "1", "type": "PrimitiveString", "inputs": {"value": "a"}},
        {"id": "2", "type": "StringReplace", "inputs": {"find": ",", "replace": ";"}},
        {"id": "3", "type": "PreviewAny"},
    ], [("1", 0, "2", "string"), ("2", 0, "3", "source")])


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def previews(stdout, node_id="7", node_type="PreviewAny"):
    prefix = f"node {node_id} ({node_type}): "
    return [line[len(prefix):] for line in stdout.splitlines() if line.startswith(prefix)]


def assert_bad_input(code, err, *fragments):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("nuance: error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


# -- run: the bundled example and files ------------------------------------------------------------
def test_run_bundled_hello(capsys, out_dir):
    code, out, err = run_cli(capsys, "run", "hello", "--output-dir", out_dir)
    assert code == 0
    assert previews(out) == [HELLO_TEXT]
    saved = out_dir / "hello_00001_.txt"
    assert saved.read_text(encoding="utf-8") == HELLO_TEXT
    assert f"saved {saved.resolve()}" in out.splitlines()
    assert "succeeded" in err and "7 executed" in err


def test_run_a_workflow_file(capsys, bool_workflow):
    code, out, _ = run_cli(capsys, "run", bool_workflow)
    assert code == 0
    assert previews(out, "2") == ["false"]


def test_run_a_relative_workflow_path(capsys, bool_workflow, monkeypatch):
    monkeypatch.chdir(bool_workflow.parent)
    code, out, _ = run_cli(capsys, "run", bool_workflow.name)
    assert code == 0 and previews(out, "2") == ["false"]


def test_run_a_comfyui_api_prompt(capsys, tmp_path):
    prompt = {
        "3": {"class_type": "PrimitiveInt", "inputs": {"value": 20}},
        "4": {"class_type": "MathInt", "inputs": {"a": ["3", 0], "b": 22, "operation": "add"}},
        "5": {"class_type": "PreviewAny", "inputs": {"source": ["4", 0]}},
    }
    path = tmp_path / "api.json"
    path.write_text(json.dumps(prompt), encoding="utf-8")
    code, out, _ = run_cli(capsys, "run", path)
    assert code == 0 and previews(out, "5") == ["42"]


def test_quiet_prints_no_summary(capsys, out_dir):
    code, _, err = run_cli(capsys, "run", "hello", "--output-dir", out_dir, "--quiet")
    assert code == 0
    assert err == ""
    assert (out_dir / "hello_00001_.txt").exists()


def test_default_output_dir_is_in_the_user_data_folder(capsys):
    code, _, _ = run_cli(capsys, "run", "hello")
    assert code == 0
    saved = Path(os.environ["NUANCE_DATA_DIR"]) / "output" / "hello_00001_.txt"
    assert saved.read_text(encoding="utf-8") == HELLO_TEXT


def test_relative_output_dir_is_honoured_and_reported_absolute(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    report = tmp_path / "report.json"
    code, _, _ = run_cli(capsys, "run", "hello", "--output-dir", "results/today", "--report", report)
    assert code == 0
    saved = tmp_path / "results" / "today" / "hello_00001_.txt"
    assert saved.exists()
    outputs = json.loads(report.read_text())["runs"][0]["outputs"]
    assert outputs == [str(saved.resolve())]
    assert all(Path(p).is_absolute() for p in outputs)


def test_each_run_saves_a_new_file(capsys, out_dir):
    for name in ("Ada", "Grace"):
        assert run_cli(capsys, "run", "hello", "--output-dir", out_dir, "--set", f"1.value={name}")[0] == 0
    assert sorted(p.name for p in out_dir.iterdir()) == ["hello_00001_.txt", "hello_00002_.txt"]
    assert (out_dir / "hello_00002_.txt").read_text(encoding="utf-8").startswith("Hello, Grace!")


# -- --set ---------------------------------------------------------------------------------------------
def test_set_parses_by_input_type(capsys, out_dir):
    code, out, _ = run_cli(capsys, "run", "hello", "--output-dir", out_dir,
                           "--set", "1.value=Ada", "--set", "2.value=-3", "--set", "4.operation=add")
    assert code == 0
    assert previews(out) == ["Hello, Ada! -3 × 7 = 4"]


def test_set_string_keeps_text_that_looks_like_a_number(capsys, out_dir):
    code, out, _ = run_cli(capsys, "run", "hello", "--output-dir", out_dir, "--set", "1.value=007")
    assert code == 0 and previews(out) == ["Hello, 007! 6 × 7 = 42"]


def test_set_value_may_contain_equals_signs(capsys, out_dir):
    code, out, _ = run_cli(capsys, "run", "hello", "--output-dir", out_dir, "--set", "1.value=a=b")
    assert code == 0 and previews(out) == ["Hello, a=b! 6 × 7 = 42"]


@pytest.mark.parametrize(("text", "shown"), [("true", "true"), ("false", "false"), ("TRUE", "true"), (" False ", "false")])
def test_set_booleans(capsys, bool_workflow, text, shown):
    code, out, _ = run_cli(capsys, "run", bool_workflow, "--set", f"1.value={text}")
    assert code == 0 and previews(out, "2") == [shown]


@pytest.mark.parametrize(("item", "fragments"), [
    ("2.value=abc", ["--set 2.value=abc", "whole number"]),
    ("2.value=1.5", ["whole number"]),
    ("2.value=", ["whole number"]),
    ("4.operation=root", ["not one of the choices"]),
    ("2.value", ["expected NODE_ID.INPUT=VALUE"]),
    ("value=3", ["expected NODE_ID.INPUT=VALUE"]),
])
def test_set_bad_values_exit_2(capsys, item, fragments, out_dir):
    code, out, err = run_cli(capsys, "run", "hello", "--output-dir", out_dir, "--set", item)
    assert_bad_input(code, err, *fragments)
    assert out == "" and not out_dir.exists()  # nothing ran


@pytest.mark.parametrize("text", ["yes", "1", "on"])
def test_set_boolean_refuses_other_words(capsys, bool_workflow, text):
    code, _, err = run_cli(capsys, "run", bool_workflow, "--set", f"1.value={text}")
    assert_bad_input(code, err, "true or false")


def test_set_unknown_node_id(capsys):
    code, _, err = run_cli(capsys, "run", "hello", "--set", "99.value=1")
    assert_bad_input(code, err, "no node '99'")


def test_set_unknown_input(capsys):
    code, _, err = run_cli(capsys, "run", "hello", "--set", "2.nope=1")
    assert_bad_input(code, err, "node 2 (PrimitiveInt) has no input 'nope'", "inputs: value")


def test_set_linked_input(capsys):
    code, _, err = run_cli(capsys, "run", "hello", "--set", "4.a=1")
    assert_bad_input(code, err, "input 'a' of node 4 (MathInt) is connected to node 2", "node 2 instead")


def test_set_any_typed_input_takes_text(capsys, tmp_path):
    path = write_workflow(tmp_path / "w.json", [
        {"id": "1", "type": "Switch", "inputs": {"select": False}},
        {"id": "2", "type": "PrimitiveInt", "inputs": {"value": 1}},
        {"id": "3", "type": "PreviewAny"},
    ], [("2", 0, "1", "on_true"), ("1", 0, "3", "source")])
    code, out, err = run_cli(capsys, "run", path)
    assert code == 1 and "on_false is not connected" in err
    code, out, _ = run_cli(capsys, "run", path, "--set", "1.on_false=typed in")
    assert code == 0 and previews(out, "3") == ["typed in"]


def test_set_node_id_with_dots_uses_the_last_dot(capsys, tmp_path):
    path = write_workflow(tmp_path / "w.json", [
        {"id": "seed.main", "type": "PrimitiveInt", "inputs": {"value": 1}},
        {"id": "show", "type": "PreviewAny"},
    ], [("seed.main", 0, "show", "source")])
    code, out, _ = run_cli(capsys, "run", path, "--set", "seed.main.value=77")
    assert code == 0 and previews(out, "show") == ["77"]


def test_same_key_in_set_and_sweep(capsys):
    code, _, err = run_cli(capsys, "run", "hello", "--set", "2.value=1", "--sweep", "2.value=1,2")
    assert_bad_input(code, err, "2.value", "already given by --set")


def test_same_key_twice_in_set(capsys):
    code, _, err = run_cli(capsys, "run", "hello", "--set", "2.value=1", "--set", "2.value=2")
    assert_bad_input(code, err, "already given")


# -- --sweep ---------------------------------------------------------------------------------------------
def test_sweep_runs_the_cartesian_product_reusing_the_cache(capsys, out_dir, tmp_path):
    report = tmp_path / "report.json"
    code, out, err = run_cli(capsys, "run", "hello", "--output-dir", out_dir, "--report", report,
                             "--sweep", "2.value=1,2", "--sweep", "3.value=3,4")
    assert code == 0
    assert previews(out) == [
        "Hello, world! 1 × 3 = 3", "Hello, world! 1 × 4 = 4", "Hello, world! 2 × 3 = 6", "Hello, world! 2 × 4 = 8",
    ]
    assert len(list(out_dir.iterdir())) == 4
    runs = json.loads(report.read_text())["runs"]
    assert [r["params"] for r in runs] == [
        {"2.value": 1, "3.value": 3}, {"2.value": 1, "3.value": 4},
        {"2.value": 2, "3.value": 3}, {"2.value": 2, "3.value": 4},
    ]
    status = [{node_id: node["status"] for node_id, node in r["nodes"].items()} for r in runs]
    assert set(status[0].values()) == {"executed"}
    # the name never changes: cached in every later run
    assert [s["1"] for s in status] == ["executed", "cached", "cached", "cached"]
    assert [s["2"] for s in status] == ["executed", "cached", "executed", "cached"]
    assert [s["3"] for s in status] == ["executed", "executed", "cached", "cached"]
    assert all(s["4"] == s["5"] == s["6"] == s["7"] == "executed" for s in status)
    assert "run 2/4" in err and "1 cached" not in err.splitlines()[0]
    assert "2 cached" in err.splitlines()[1]


def test_sweep_json_array_values_may_contain_commas(capsys, out_dir, tmp_path):
    report = tmp_path / "report.json"
    code, out, _ = run_cli(capsys, "run", "hello", "--output-dir", out_dir, "--report", report,
                           "--sweep", '1.value=["Ada, Countess", "Grace"]')
    assert code == 0
    assert previews(out) == ["Hello, Ada, Countess! 6 × 7 = 42", "Hello, Grace! 6 × 7 = 42"]
    assert [r["params"] for r in json.loads(report.read_text())["runs"]] == [
        {"1.value": "Ada, Countess"}, {"1.value": "Grace"},
    ]


def test_sweep_json_array_values_are_typed(capsys, out_dir):
    code, out, _ = run_cli(capsys, "run", "hello", "--output-dir", out_dir, "--sweep", "2.value=[10, 20.0]")
    assert code == 0
    assert previews(out) == ["Hello, world! 10 × 7 = 70", "Hello, world! 20 × 7 = 140"]


def test_sweep_with_set(capsys, out_dir):
    code, out, _ = run_cli(capsys, "run", "hello", "--output-dir", out_dir,
                           "--set", "4.operation=subtract", "--sweep", "3.value=1,2,3")
    assert code == 0
    assert previews(out) == ["Hello, world! 6 × 1 = 5", "Hello, world! 6 × 2 = 4", "Hello, world! 6 × 3 = 3"]


def test_sweep_booleans(capsys, bool_workflow):
    code, out, _ = run_cli(capsys, "run", bool_workflow, "--sweep", "1.value=true,false")
    assert code == 0 and previews(out, "2") == ["true", "false"]


def test_sweep_json_strings_keep_spaces(capsys, text_workflow):
    code, out, _ = run_cli(capsys, "run", text_workflow, "--set", "1.value=x,y", "--sweep", '2.replace=[" ", "|"]')
    assert code == 0 and previews(out, "3") == ["x y", "x|y"]


@pytest.mark.parametrize(("sweep", "fragment"), [
    ("2.value=1,x", "whole number"),
    ("2.value=[1, 2", "not valid JSON"),
    ("2.value=[]", "no values"),
    ("2.value=[1.5]", "whole number"),
    ("4.operation=add,root", "not one of the choices"),
])
def test_sweep_bad_values_exit_2(capsys, sweep, fragment, out_dir):
    code, _, err = run_cli(capsys, "run", "hello", "--output-dir", out_dir, "--sweep", sweep)
    assert_bad_input(code, err, fragment)
    assert not out_dir.exists()


# -- failures --------------------------------------------------------------------------------------------
def test_failed_run_exits_1(capsys, out_dir, tmp_path):
    report = tmp_path / "report.json"
    code, out, err = run_cli(capsys, "run", "hello", "--output-dir", out_dir, "--report", report,
                             "--set", "3.value=0", "--set", "4.operation=divide")
    assert code == 1
    assert "node 4 (MathInt) failed" in err and "cannot divide by zero" in err
    assert "Traceback" not in err
    assert previews(out) == []
    (run,) = json.loads(report.read_text())["runs"]
    assert run["status"] == "failed"
    assert run["nodes"]["4"]["status"] == "failed"
    assert "cannot divide by zero" in run["nodes"]["4"]["error"]
    assert {run["nodes"][n]["status"] for n in ("6", "7")} == {"skipped"}
    assert "node 5 (StringFormat)" in run["nodes"]["6"]["reason"]
    assert {run["nodes"][n]["status"] for n in ("1", "2", "3")} == {"executed"}
    assert run["outputs"] == []


def test_verbose_prints_the_failing_nodes_traceback(capsys, out_dir):
    code, _, err = run_cli(capsys, "run", "hello", "--output-dir", out_dir, "--verbose",
                           "--set", "3.value=0", "--set", "4.operation=divide")
    assert code == 1 and "Traceback" in err and "ValueError" in err


def test_failed_sweep_run_does_not_stop_the_others(capsys, out_dir, tmp_path):
    report = tmp_path / "report.json"
    code, out, _ = run_cli(capsys, "run", "hello", "--output-dir", out_dir, "--report", report,
                           "--set", "4.operation=divide", "--sweep", "3.value=0,3,2")
    assert code == 1
    assert previews(out) == ["Hello, world! 6 × 3 = 2", "Hello, world! 6 × 2 = 3"]
    runs = json.loads(report.read_text())["runs"]
    assert [r["status"] for r in runs] == ["failed", "succeeded", "succeeded"]
    assert runs[0]["nodes"]["4"]["status"] == "failed"
    assert len(runs[1]["outputs"]) == len(runs[2]["outputs"]) == 1


# -- bad input ------------------------------------------------------------------------------------------
def test_missing_workflow_file(capsys, tmp_path):
    missing = tmp_path / "nope.json"
    code, _, err = run_cli(capsys, "run", missing)
    assert_bad_input(code, err, str(missing), "no such file")


def test_unknown_bundled_name(capsys):
    code, _, err = run_cli(capsys, "run", "no_such_example")
    assert_bad_input(code, err, "no_such_example", "no such file")


def test_malformed_json(capsys, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"format": "nuance.workflow",\n "version": ', encoding="utf-8")
    code, _, err = run_cli(capsys, "run", path)
    assert_bad_input(code, err, "broken.json", "not valid JSON", "line 2")


def test_not_a_workflow(capsys, tmp_path):
    path = tmp_path / "list.json"
    path.write_text("[1, 2]", encoding="utf-8")
    code, _, err = run_cli(capsys, "run", path)
    assert_bad_input(code, err, "a workflow is a JSON object")


@pytest.mark.parametrize(("nodes", "links", "fragments"), [
    ([{"id": "1", "type": "PreviewAny"}], [], ["node 1 (PreviewAny)", "required input is not connected"]),
    ([{"id": "1", "type": "PrimitiveString"}, {"id": "2", "type": "MathInt"}, {"id": "3", "type": "PreviewAny"}],
     [("1", 0, "2", "a"), ("2", 0, "3", "source")], ["node 2 (MathInt)", "expects INT but String gives STRING"]),
    ([{"id": "1", "type": "NoSuchNode"}, {"id": "2", "type": "PreviewAny"}], [("1", 0, "2", "source")],
     ["unknown node type 'NoSuchNode'"]),
    ([{"id": "1", "type": "PrimitiveInt", "inputs": {"value": "six"}}, {"id": "2", "type": "PreviewAny"}],
     [("1", 0, "2", "source")], ["input 'value'", "whole number"]),
    ([{"id": "1", "type": "PrimitiveInt"}], [], ["no output node"]),
])
def test_invalid_graph_exits_2(capsys, tmp_path, nodes, links, fragments):
    path = write_workflow(tmp_path / "invalid.json", nodes, links)
    report = tmp_path / "report.json"
    code, out, err = run_cli(capsys, "run", path, "--report", report)
    assert_bad_input(code, err, "the graph cannot run", *fragments)
    assert out == ""
    data = json.loads(report.read_text())
    assert data["runs"] == [] and "the graph cannot run" in data["error"]


def test_set_can_make_the_graph_invalid(capsys, tmp_path):
    path = write_workflow(tmp_path / "w.json", [
        {"id": "1", "type": "Seed", "inputs": {"seed": 1}},
        {"id": "2", "type": "PreviewAny"},
    ], [("1", 0, "2", "source")])
    code, _, err = run_cli(capsys, "run", path, "--set", "1.seed=-1")
    assert_bad_input(code, err, "below the minimum 0")


def test_schema_violation(capsys, tmp_path):
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"format": "nuance.workflow", "version": 1, "graph": {"nodes": [{"id": "1"}], "links": []}}))
    code, _, err = run_cli(capsys, "run", path)
    assert_bad_input(code, err, "graph.nodes[0]", "'type'")


def test_unknown_command_line_option(capsys):
    code, _, err = run_cli(capsys, "run", "hello", "--bogus")
    assert_bad_input(code, err, "--bogus")


def test_missing_models_dir(capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", "hello", "--models-dir", tmp_path / "none")
    assert_bad_input(code, err, "--models-dir", "no such folder")


# -- --device ----------------------------------------------------------------------------------------------
def test_device_cpu_is_accepted(capsys, out_dir):
    code, out, _ = run_cli(capsys, "run", "hello", "--device", "cpu", "--output-dir", out_dir)
    assert code == 0 and previews(out) == [HELLO_TEXT]


def test_device_names_are_case_insensitive(capsys, out_dir):
    assert run_cli(capsys, "run", "hello", "--device", "CPU", "--output-dir", out_dir)[0] == 0


@pytest.mark.parametrize("device", ["bogus", "cuda:x", "gpu"])
def test_unknown_device_exits_2(capsys, device, out_dir):
    code, _, err = run_cli(capsys, "run", "hello", "--device", device, "--output-dir", out_dir)
    assert_bad_input(code, err, f"unknown device {device!r}")
    assert not out_dir.exists()


# -- --report ----------------------------------------------------------------------------------------------
def test_report_structure(capsys, out_dir, tmp_path):
    report = tmp_path / "deep" / "folder" / "report.json"
    code, _, _ = run_cli(capsys, "run", "hello", "--output-dir", out_dir, "--report", report, "--set", "2.value=5")
    assert code == 0
    data = json.loads(report.read_text(encoding="utf-8"))
    assert set(data) >= {"runs", "seconds"}
    assert isinstance(data["seconds"], float) and data["seconds"] >= 0
    (run,) = data["runs"]
    assert set(run) >= {"params", "nodes", "outputs", "seconds"}
    assert run["params"] == {"2.value": 5}
    assert run["status"] == "succeeded"
    assert set(run["nodes"]) == {"1", "2", "3", "4", "5", "6", "7"}
    expected_types = {"1": "PrimitiveString", "2": "PrimitiveInt", "3": "PrimitiveInt", "4": "MathInt",
                      "5": "StringFormat", "6": "SaveText", "7": "PreviewAny"}
    for node_id, node in run["nodes"].items():
        assert node["type"] == expected_types[node_id]
        assert node["status"] == "executed"
        assert isinstance(node["seconds"], (int, float)) and node["seconds"] >= 0
        assert "error" not in node
    saved = (out_dir / "hello_00001_.txt").resolve()
    assert run["outputs"] == [str(saved)]
    assert run["nodes"]["7"]["ui"] == {"text": "Hello, world! 5 × 7 = 35"}
    assert isinstance(run["seconds"], float)


def test_report_with_an_error_node_entry(capsys, out_dir, tmp_path):
    report = tmp_path / "report.json"
    run_cli(capsys, "run", "hello", "--output-dir", out_dir, "--report", report, "--set", "4.operation=modulo",
            "--set", "3.value=0")
    node = json.loads(report.read_text())["runs"][0]["nodes"]["4"]
    assert node["type"] == "MathInt" and node["status"] == "failed" and "divide by zero" in node["error"]
    skipped = json.loads(report.read_text())["runs"][0]["nodes"]["5"]
    assert skipped["status"] == "skipped" and "node 4 (MathInt)" in skipped["reason"]


@pytest.mark.parametrize("argv", [
    ["run", "hello", "--set", "99.value=1"],
    ["run", "hello", "--device", "bogus"],
    ["run", "missing_workflow.json"],
    ["run", "hello", "--sweep", "2.value=x"],
])
def test_report_is_written_on_bad_input(capsys, tmp_path, argv):
    report = tmp_path / "report.json"
    code, _, err = run_cli(capsys, *argv, "--report", report)
    assert code == 2
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["runs"] == []
    assert data["error"] and data["error"] in err
    assert "seconds" in data


def test_report_is_written_on_a_command_line_syntax_error(capsys, tmp_path):
    """README: '--report FILE writes JSON in every case, even for bad input'."""
    report = tmp_path / "report.json"
    code, _, _ = run_cli(capsys, "run", "hello", "--report", report, "--no-such-flag")
    assert code == 2
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["runs"] == [] and "--no-such-flag" in data["error"]


# -- nodes ---------------------------------------------------------------------------------------------------
def test_nodes_json(capsys):
    code, out, _ = run_cli(capsys, "nodes", "--json")
    assert code == 0
    data = json.loads(out)
    assert isinstance(data, list)
    by_type = {item["type"]: item for item in data}
    assert set(by_type) == {spec.type for spec in load_plugins().registry}  # built-ins and the bundled plugin
    assert "imagetools.Levels" in by_type and "KSampler" in by_type
    for item in data:
        assert {"type", "category", "description", "inputs", "outputs"} <= set(item)
        assert isinstance(item["description"], str) and item["description"]
        for inp in item["inputs"]:
            assert {"name", "type", "required"} <= set(inp)
            assert isinstance(inp["required"], bool)
        for output in item["outputs"]:
            assert set(output) == {"name", "type"}
    math_int = by_type["MathInt"]
    assert math_int["category"] == "utils/math"
    assert [i["name"] for i in math_int["inputs"]] == ["a", "b", "operation"]
    a = math_int["inputs"][0]
    assert a["type"] == "INT" and a["required"] is True and a["default"] == 0
    operation = math_int["inputs"][2]
    assert operation["choices"] == ["add", "subtract", "multiply", "divide", "modulo", "power", "min", "max"]
    assert operation["default"] == "add"
    assert math_int["outputs"] == [{"name": "result", "type": "INT"}]
    seed = by_type["Seed"]["inputs"][0]
    assert seed["min"] == 0 and seed["max"] == 2**64 - 1
    on_true = {i["name"]: i for i in by_type["Switch"]["inputs"]}["on_true"]
    assert on_true["type"] == "*" and on_true["required"] is False and "default" not in on_true
    assert "choices" not in on_true and "min" not in on_true
    assert by_type["PreviewAny"]["outputs"] == []


def test_nodes_plain_listing(capsys):
    code, out, _ = run_cli(capsys, "nodes")
    assert code == 0
    category = None
    listed = {}
    for line in out.splitlines():
        if not line.startswith(" "):
            category = line.strip()
            continue
        node_type, _, description = line.strip().partition(" ")
        listed[node_type] = (category, description.strip())
    registry = load_plugins().registry
    assert set(listed) == {spec.type for spec in registry}
    for spec in registry:
        assert listed[spec.type][0] == spec.category
    assert listed["MathInt"][1].startswith("Whole-number arithmetic")


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    out = capsys.readouterr().out
    assert exited.value.code == 0 and "run" in out and "nodes" in out and "gui" in out


def test_no_command_opens_the_editor(monkeypatch):
    import studio.ui.app

    opened = []
    monkeypatch.setattr(studio.ui.app, "main", lambda argv: opened.append(list(argv)) or 0)
    assert main([]) == 0
    assert opened == [[]]


# -- subprocess smoke tests -------------------------------------------------------------------------------
@pytest.mark.slow
def test_python_m_studio_cli_runs_hello(tmp_path):
    out_dir = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "studio.cli", "run", "hello", "--output-dir", str(out_dir)],
                          capture_output=True, text=True, encoding="utf-8", cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert f"node 7 (PreviewAny): {HELLO_TEXT}" in proc.stdout
    assert (out_dir / "hello_00001_.txt").read_text(encoding="utf-8") == HELLO_TEXT


@pytest.mark.slow
def test_nuance_console_script(tmp_path):
    script = Path(sys.executable).parent / ("nuance.exe" if os.name == "nt" else "nuance")
    if not script.exists():
        pytest.skip("the nuance console script is not installed next to this Python")
    proc = subprocess.run([str(script), "run", "hello", "--output-dir", str(tmp_path / "out"), "--set", "2.value=x"],
                          capture_output=True, text=True, encoding="utf-8", cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("nuance: error: --set 2.value=x") and "Traceback" not in proc.stderr
    proc = subprocess.run([str(script), "run", "hello", "--output-dir", str(tmp_path / "out")],
                          capture_output=True, text=True, encoding="utf-8", cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "hello_00001_.txt").read_text(encoding="utf-8") == HELLO_TEXT


def test_quiet_still_prints_results_on_stdout(capsys, out_dir):
    code, out, err = run_cli(capsys, "run", "hello", "--output-dir", out_dir, "--quiet")
    assert code == 0 and err == ""
    assert "Hello, world! 6 × 7 = 42" in out
    assert f"saved {(out_dir / 'hello_00001_.txt').resolve()}" in out


def test_bad_input_report_names_the_workflow(capsys, tmp_path):
    report = tmp_path / "r.json"
    code, _, _ = run_cli(capsys, "run", "hello", "--report", report, "--set", "99.value=1")
    assert code == 2
    data = json.loads(report.read_text())
    assert data["workflow"] == "hello" and data["runs"] == [] and "99" in data["error"]
