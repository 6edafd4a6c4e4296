"""The ``nuance`` command line. Runs the same engine the editor uses, with no GUI at all;
``nuance`` alone (or ``nuance gui [WORKFLOW]``) opens the editor; ``nuance plugins …`` manages
plugins (see ``studio/cli_plugins.py``).

Exit codes: 0 every run succeeded, 1 a run failed (or was cancelled), 2 bad input (a one-line
error, no traceback), 130 interrupted with Ctrl+C.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TextIO

from studio import __version__
from studio.core.errors import GraphValidationError, InputValueError, NuanceError
from studio.core.nodedef import Input
from studio.core.registry import NodeRegistry
from studio.core.workflow import Workflow, load_workflow
from studio.engine.events import Event, NodeCached, NodeFailed, NodeFinished, NodeProgress, NodeSkipped, RunStarted

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(NuanceError):
    """Bad command-line input: reported on one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nuance", description="Nuance Studio: node graphs for image generation.")
    parser.add_argument("--version", action="version", version=f"Nuance Studio {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = commands.add_parser("run", help="run a workflow headless", description=(
        "Run a workflow file (or the name of a bundled example) without the GUI. "
        "Keys are NODE_ID.INPUT; the node id is everything before the last '.'."))
    run.add_argument("workflow", help="workflow .json (ours or ComfyUI's API format), or a bundled example's name")
    run.add_argument("--set", dest="sets", action="append", default=[], metavar="NODE_ID.INPUT=VALUE",
                     help="set a constant input (repeatable)")
    run.add_argument("--sweep", dest="sweeps", action="append", default=[], metavar="NODE_ID.INPUT=V1,V2,...",
                     help="run once per value; several sweeps run every combination. The values may be "
                          "a JSON array instead, for values with commas: '6.text=[\"a, b\", \"c\"]'")
    run.add_argument("--output-dir", type=Path, help="where saved files go (default: your Nuance output folder)")
    run.add_argument("--report", type=Path, help="write a JSON report of every run here (written in every case)")
    run.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    run.add_argument("--models-dir", type=Path, help="the models folder to use for this run")
    run.add_argument("--quiet", "-q", action="store_true",
                     help="no progress bar, summary or warnings on stderr (results still go to stdout)")
    run.add_argument("--verbose", "-v", action="store_true", help="print the traceback of a failing node")

    models = commands.add_parser("models", help="list the model files found, with their type and hash",
                                 description="List model files in the models folders: what each is (detected from "
                                             "its contents) and the short SHA-256 hash model sites show.")
    models.add_argument("action", nargs="?", choices=["list"], default="list")
    models.add_argument("--json", action="store_true", help="machine-readable output")
    models.add_argument("--kind", choices=["checkpoints", "vae", "loras", "controlnet", "embeddings", "upscale_models"],
                        help="only this kind of model")
    models.add_argument("--no-hash", action="store_true", help="skip hashing (hashes of new files take a while)")
    models.add_argument("--models-dir", type=Path, help="the models folder to list")

    gui = commands.add_parser("gui", help="open the editor window (the default command)",
                              description="Open the node editor; with no workflow, the txt2img example.")
    gui.add_argument("workflow", nargs="?", help="workflow .json to open, or a bundled example's name")

    nodes = commands.add_parser("nodes", help="list the installed node types")
    nodes.add_argument("--json", action="store_true", help="machine-readable description of every node")

    _add_export_parser(commands)

    from studio import cli_plugins

    cli_plugins.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point, callable in-process: returns the exit code instead of exiting."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    report_path, workflow_arg = _early_report_args(args_list)
    try:
        args = parser.parse_args(args_list)
        if args.command == "run":
            from studio.models.folders import configured

            with configured(args.models_dir):  # model choices in the workflow are checked against it
                return _cmd_run(args)
        if args.command == "nodes":
            return _cmd_nodes(args)
        if args.command == "models":
            return _cmd_models(args)
        if args.command == "export":
            return _cmd_export(args)
        if args.command == "plugins":
            from studio import cli_plugins

            return cli_plugins.run(args)
        return _cmd_gui(getattr(args, "workflow", None))
    except (NuanceError, OSError) as exc:
        message = str(exc) if isinstance(exc, NuanceError) else f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
        print(f"nuance: error: {message}", file=sys.stderr)
        if report_path is not None:
            _write_report(report_path, {"workflow": workflow_arg, "runs": [], "error": message, "seconds": 0.0})
        return EXIT_BAD_INPUT


def _early_report_args(argv: list[str]) -> tuple[Path | None, str | None]:
    """Find --report and the workflow even when the rest of the command line is bad, so that the
    report is written in every case."""
    if not argv or argv[0] != "run":
        return None, None
    scout = argparse.ArgumentParser(add_help=False)
    scout.add_argument("--report", type=Path)
    scout.add_argument("workflow", nargs="?")
    for flag in ("--set", "--sweep", "--output-dir", "--device", "--models-dir"):
        scout.add_argument(flag)
    try:
        known, _ = scout.parse_known_args(argv[1:])
    except SystemExit:
        return None, None
    return known.report, known.workflow


def _cmd_gui(workflow: str | None) -> int:
    """The editor, imported only now: ``run``, ``nodes`` and ``models`` never load Qt."""
    from studio.ui.app import main as gui_main

    return gui_main([] if workflow is None else [workflow])


def entry() -> None:
    """Console-script wrapper around :func:`main`."""
    sys.exit(main())


# -- nodes -------------------------------------------------------------------------------------
def _registry(quiet: bool = False) -> NodeRegistry:
    from studio.runtime import load_registry

    registry, errors = load_registry()
    if not quiet:
        for error in errors:
            print(f"nuance: warning: {error}", file=sys.stderr)
    return registry


def _cmd_nodes(args: argparse.Namespace) -> int:
    registry = _registry()
    if args.json:
        json.dump([spec.describe() for spec in registry], sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return EXIT_OK
    for category, specs in itertools.groupby(registry, key=lambda s: s.category):
        print(category)
        for spec in specs:
            description = spec.description.split(". ")[0].rstrip(".")
            print(f"  {spec.type:<28} {description}")
    return EXIT_OK


# -- models ------------------------------------------------------------------------------------
def _cmd_models(args: argparse.Namespace) -> int:
    from studio.models.detect import detect_file
    from studio.models.files import short_hash
    from studio.models.folders import KINDS, model_folders

    if args.models_dir is not None and not args.models_dir.is_dir():
        raise UsageError(f"--models-dir {args.models_dir}: no such folder")
    folders = model_folders(args.models_dir)
    entries: list[dict[str, Any]] = []
    for kind in [args.kind] if args.kind else list(KINDS):
        for name, path in folders.files(kind).items():
            entry: dict[str, Any] = {"kind": kind, "name": name, "path": str(path)}
            try:
                info = detect_file(path)
                entry.update(detected=info.kind, arch=info.arch, format=info.format, note=info.note)
                if path.is_file():
                    entry["size"] = path.stat().st_size
                    if not args.no_hash:
                        entry["hash"] = short_hash(path)
            except NuanceError as exc:
                entry.update(detected="broken", error=str(exc))
            entries.append(entry)
    if args.json:
        json.dump({"models_dir": str(folders.root), "source": folders.source, "models": entries}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    print(f"models folder: {folders.root} (from {folders.source})")
    if not entries:
        print("no model files found; put checkpoints in " + str(folders.root / "checkpoints"))
    for kind, group in itertools.groupby(entries, key=lambda e: e["kind"]):
        print(kind)
        for entry in group:
            what = entry.get("error") or " ".join(
                str(v) for v in (entry.get("detected"), entry.get("arch"), entry.get("note")) if v)
            size = f"{entry['size'] / 1024**2:,.0f} MB" if "size" in entry else ""
            print(f"  {entry.get('hash', ''):<10}  {entry['name']:<48} {size:>10}  {what}")
    return EXIT_OK


# -- run ---------------------------------------------------------------------------------------
@dataclass
class _Param:
    key: str
    node_id: str
    input: Input
    values: list[Any]


def _workflow_path(name: str) -> Path:
    path = Path(name)
    if path.exists() or path.suffix or os.sep in name or "/" in name:
        return path
    from studio.core.resources import resource_path

    bundled = resource_path("workflows", f"{name}.json")
    return bundled if bundled.exists() else path


def _resolve_key(workflow: Workflow, registry: NodeRegistry, key: str, flag: str) -> tuple[str, Input]:
    node_id, dot, input_name = key.rpartition(".")
    if not dot or not node_id or not input_name:
        raise UsageError(f"{flag} {key}: expected NODE_ID.INPUT=VALUE")
    graph = workflow.graph
    node = graph.nodes.get(node_id)
    if node is None:
        ids = ", ".join(list(graph.nodes)[:20])
        raise UsageError(f"{flag} {key}: the workflow has no node {node_id!r} (its nodes: {ids})")
    spec = registry.spec(node.type)
    if spec is None:
        raise UsageError(f"{flag} {key}: node {node_id} is of unknown type {node.type!r}")
    input_name = spec.renamed_input(input_name)
    inp = spec.input_map.get(input_name)
    if inp is None:
        names = ", ".join(spec.input_map) or "none"
        raise UsageError(f"{flag} {key}: node {node_id} ({node.type}) has no input {input_name!r} (inputs: {names})")
    link = graph.link_into(node_id, input_name)
    if link is not None:
        raise UsageError(
            f"{flag} {key}: input {input_name!r} of node {node_id} ({node.type}) is connected to node "
            f"{link.from_node}; set a value on node {link.from_node} instead")
    if not inp.accepts_constant:
        raise UsageError(f"{flag} {key}: input {input_name!r} takes {inp.type}, which cannot be typed in")
    return node_id, inp


def _split(item: str, flag: str) -> tuple[str, str]:
    key, eq, value = item.partition("=")
    if not eq:
        raise UsageError(f"{flag} {item}: expected NODE_ID.INPUT=VALUE")
    return key.strip(), value


def _parse_params(workflow: Workflow, registry: NodeRegistry, sets: list[str], sweeps: list[str]) -> list[_Param]:
    params: list[_Param] = []
    seen: dict[str, str] = {}
    for flag, items in (("--set", sets), ("--sweep", sweeps)):
        for item in items:
            key, text = _split(item, flag)
            node_id, inp = _resolve_key(workflow, registry, key, flag)
            canonical = f"{node_id}.{inp.name}"
            if canonical in seen:
                raise UsageError(f"{flag} {key}: this input is already given by {seen[canonical]}; name it once")
            seen[canonical] = flag
            try:
                values = [inp.parse_text(text)] if flag == "--set" else _sweep_values(inp, text)
            except InputValueError as exc:
                raise UsageError(f"{flag} {item}: {exc}") from None
            params.append(_Param(canonical, node_id, inp, values))
    return params


def _sweep_values(inp: Input, text: str) -> list[Any]:
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputValueError(f"the value list looks like JSON but is not valid JSON ({exc.msg})") from None
        if not isinstance(items, list):
            raise InputValueError("the value list must be a JSON array")
        values = [inp.coerce(item) for item in items]
    else:
        values = [inp.parse_text(part) for part in text.split(",")]
    if not values:
        raise InputValueError("the sweep has no values")
    return values


class _Progress:
    """A progress bar on a terminal (tqdm), silent otherwise; fed by engine events."""

    def __init__(self, label: str, enabled: bool, stream: TextIO):
        self.label = label
        self.enabled = enabled
        self.stream = stream
        self.bar: Any = None

    def __call__(self, event: Event) -> None:
        if not self.enabled:
            return
        if isinstance(event, RunStarted):
            from tqdm import tqdm

            self.bar = tqdm(total=len(event.node_ids), desc=self.label, unit="node", file=self.stream, leave=False)
        elif self.bar is None:
            return
        elif isinstance(event, NodeProgress):
            total = f"/{event.total:g}" if event.total else ""
            self.bar.set_postfix_str(f"{event.node_type} {event.value:g}{total}", refresh=True)
        elif isinstance(event, (NodeFinished, NodeCached, NodeFailed, NodeSkipped)):
            self.bar.set_postfix_str(event.node_type, refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _cmd_run(args: argparse.Namespace) -> int:
    from studio.core.validate import check_graph
    from studio.engine import Executor
    from studio.models.devices import check_device_name, resolve_device
    from studio.runtime import run_options

    started = time.perf_counter()
    device = check_device_name(args.device)
    if device != "auto":
        resolve_device(device)  # fail now, with exit code 2, rather than inside the first model node
    if args.models_dir is not None and not args.models_dir.is_dir():
        raise UsageError(f"--models-dir {args.models_dir}: no such folder")
    registry = _registry(args.quiet)
    workflow = load_workflow(_workflow_path(args.workflow), registry)
    for warning in workflow.warnings:
        print(f"nuance: warning: {warning}", file=sys.stderr)
    params = _parse_params(workflow, registry, args.sets, args.sweeps)
    graph = workflow.graph
    combos = list(itertools.product(*(p.values for p in params)))
    for param, value in zip(params, combos[0]):
        graph.set_input(param.node_id, param.input.name, value)
    check_graph(graph, registry)  # a broken workflow is bad input (exit 2), not a failed run

    options = run_options(workflow, output_dir=args.output_dir, device=device, models_dir=args.models_dir)
    executor = Executor(registry, options=options)
    show_bar = not args.quiet and sys.stderr.isatty()
    runs: list[dict[str, Any]] = []
    exit_code = EXIT_OK
    try:
        for index, combo in enumerate(combos, 1):
            for param, value in zip(params, combo):
                graph.set_input(param.node_id, param.input.name, value)
            label = f"run {index}/{len(combos)}" if len(combos) > 1 else "run"
            progress = _Progress(label, show_bar, sys.stderr)
            run_started = time.perf_counter()
            entry: dict[str, Any] = {"params": {p.key: v for p, v in zip(params, combo)}}
            try:
                result = executor.run(graph, listener=progress)
            except GraphValidationError as exc:
                entry.update(status="failed", error=str(exc), nodes={}, outputs=[],
                             seconds=round(time.perf_counter() - run_started, 6))
                exit_code = EXIT_FAILED
                if not args.quiet:
                    print(f"{label}: failed: {exc}", file=sys.stderr)
            else:
                progress.close()
                entry.update(_run_entry(result))
                if not result.ok:
                    exit_code = EXIT_FAILED
                _print_run(label, entry, result, args.verbose, args.quiet)
            finally:
                progress.close()
            runs.append(entry)
    except KeyboardInterrupt:
        print("nuance: interrupted", file=sys.stderr)
        exit_code = EXIT_INTERRUPTED
    finally:
        if args.report is not None:
            _write_report(args.report, {"workflow": str(workflow.path), "runs": runs,
                                        "seconds": round(time.perf_counter() - started, 6)})
    return exit_code


def _run_entry(result: Any) -> dict[str, Any]:
    nodes: dict[str, Any] = {}
    for node_id, record in result.nodes.items():
        item: dict[str, Any] = {"type": record.node_type, "status": record.status,
                                "seconds": round(record.seconds, 6)}
        if record.error is not None:
            item["error"] = record.error
            item["traceback"] = record.traceback
        if record.reason is not None:
            item["reason"] = record.reason
        if record.ui:
            item["ui"] = record.ui
        nodes[node_id] = item
    return {"status": result.status, "nodes": nodes, "outputs": result.files, "seconds": round(result.seconds, 6)}


def _print_run(label: str, entry: dict[str, Any], result: Any, verbose: bool, quiet: bool) -> None:
    """Results (previews, saved paths) go to stdout always; the summary to stderr unless quiet."""
    if not quiet:
        counts = {s: result.count(s) for s in ("executed", "cached", "skipped", "failed")}
        summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        params = " ".join(f"{k}={json.dumps(v)}" for k, v in entry["params"].items())
        print(f"{label}{' ' + params if params else ''}: {result.status} in {result.seconds:.2f}s ({summary})",
              file=sys.stderr)
    for node_id, record in result.nodes.items():
        text = record.ui.get("text") if record.ui else None
        if text is not None and not record.files:
            print(f"node {node_id} ({record.node_type}): {text}")
        if record.error is not None and not quiet:
            print(f"  node {node_id} ({record.node_type}) failed: {record.error}", file=sys.stderr)
            if verbose and record.traceback:
                print(record.traceback, file=sys.stderr)
    for path in result.files:
        print(f"saved {path}")


def _write_report(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")


# -- export (ComfyUI API format) -----------------------------------------------------------------
def _add_export_parser(commands: Any) -> None:
    export = commands.add_parser(
        "export", help="write a workflow as a ComfyUI API-format prompt",
        description="Write a workflow whose nodes are all ComfyUI core types as a ComfyUI API-format prompt "
                    "(JSON on stdout, or -o FILE). Bypassed nodes pass their inputs through; muted nodes, and "
                    "what needs them, are left out. A painted mask is baked into an RGBA copy of its picture "
                    "(next to FILE, or in the current folder), to be copied into ComfyUI's input folder.")
    export.add_argument("--comfy-api", action="store_true", required=True,
                        help="the format to write: ComfyUI's API format (the only one for now)")
    export.add_argument("workflow", help="workflow .json, or a bundled example's name")
    export.add_argument("-o", "--output", type=Path, metavar="FILE", help="write here instead of to stdout")


def _cmd_export(args: argparse.Namespace) -> int:
    """The prompt alone goes to stdout (pipe it anywhere); notes and what was written go to stderr."""
    from studio.core.comfy_export import build_comfy_export

    registry = _registry()
    workflow = load_workflow(_workflow_path(args.workflow), registry)
    for warning in workflow.warnings:
        print(f"nuance: warning: {warning}", file=sys.stderr)
    target: Path | None = args.output
    files_dir = Path.cwd() if target is None else target.parent
    result = build_comfy_export(workflow, registry, files_dir=files_dir)
    text = json.dumps(result.prompt, indent=2, ensure_ascii=False) + "\n"
    if target is None:
        sys.stdout.write(text)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    for note in result.notes:
        print(f"nuance: note: {note}", file=sys.stderr)
    if target is not None:
        print(f"nuance: wrote {target}", file=sys.stderr)
    return EXIT_OK


if __name__ == "__main__":
    entry()
