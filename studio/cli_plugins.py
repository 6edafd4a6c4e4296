"""``nuance plugins …``: list, install, enable, disable, update, uninstall, scan and start a new plugin.

Changes made here take effect the next time Nuance Studio starts (or at Rescan in a running
editor's Plugin Manager, which also makes the same changes itself at once).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from studio.plugins.manifest import PluginError, check_name

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
NEXT_START = ("it takes effect the next time Nuance Studio starts, or in a running editor when you press Rescan in "
              "the Plugin Manager")


def add_parser(commands: Any) -> None:
    plugins = commands.add_parser(
        "plugins", help="list, install, enable, disable, update or uninstall node plugins",
        description="Manage community node plugins. Installed plugins live in your data folder; their "
                    "requirements go into a private folder per plugin, never into Nuance Studio's environment.")
    actions = plugins.add_subparsers(dest="action", metavar="ACTION", parser_class=type(plugins))
    listing = actions.add_parser("list", help="every plugin found, with its status and where it came from")
    listing.add_argument("--json", action="store_true", help="machine-readable output")

    install = actions.add_parser("install", help="install from a folder, archive, git URL or package name",
                                 description="SOURCE is a folder, a .zip/.tar.gz archive or .whl file, a git URL "
                                             "(URL[@REV], also a local repository), or a package name (NAME[==VERSION]).")
    install.add_argument("source")
    install.add_argument("--trust", action="store_true",
                         help="confirm you trust the plugin's code (it runs with your permissions); required")
    install.add_argument("--dev", action="store_true",
                         help="link a plugin folder in place (development mode: the editor reloads it when files change)")
    _pip_options(install)

    update = actions.add_parser("update", help="fetch an installed plugin again from where it came from")
    update.add_argument("name")
    update.add_argument("--rev", help="another git revision, or package version, to install")
    update.add_argument("--trust", action="store_true", help="confirm you trust the new code; required")
    _pip_options(update)

    for verb, text in (("enable", "load a disabled plugin again"), ("disable", "keep a plugin from loading"),
                       ("uninstall", "remove a plugin and its private packages")):
        sub = actions.add_parser(verb, help=text)
        sub.add_argument("name")

    scan = actions.add_parser("scan", help="list risky things in a plugin's code without installing it")
    scan.add_argument("source", help="a plugin folder, archive or wheel")

    new = actions.add_parser("new", help="start a new plugin from the template")
    new.add_argument("name", help="the plugin's name: the prefix of its node ids")
    new.add_argument("--dir", type=Path, default=Path.cwd(), help="where to create its folder (default: here)")


def _pip_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index-url", help="package index to use instead of PyPI (passed to pip)")
    parser.add_argument("--find-links", action="append", default=[], metavar="DIR_OR_URL",
                        help="also look for packages here (passed to pip; repeatable)")
    parser.add_argument("--no-index", action="store_true", help="do not use a package index (passed to pip)")


def _pip_args(args: argparse.Namespace) -> list[str]:
    out: list[str] = []
    if getattr(args, "index_url", None):
        out += ["--index-url", args.index_url]
    for link in getattr(args, "find_links", []) or []:
        out += ["--find-links", str(link)]
    if getattr(args, "no_index", False):
        out.append("--no-index")
    return out


def run(args: argparse.Namespace) -> int:
    action = args.action or "list"
    try:
        if action == "list":
            return _list(getattr(args, "json", False))
        if action == "install":
            return _install(args)
        if action == "update":
            return _update(args)
        if action in ("enable", "disable"):
            return _toggle(args.name, action == "enable")
        if action == "uninstall":
            return _uninstall(args.name)
        if action == "scan":
            return _scan(args.source)
        if action == "new":
            return _new(args.name, args.dir)
    except PluginError as exc:
        print(f"nuance: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    raise AssertionError(action)


def _manager() -> Any:
    from studio.runtime import load_plugins

    return load_plugins()


def _list(as_json: bool) -> int:
    manager = _manager()
    if as_json:
        json.dump([p.describe() for p in manager.plugins], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    for plugin in manager.plugins:
        record = plugin.record
        source = ""
        if record is not None:
            source = record.source + (f" @ {record.commit[:12]}" if record.commit else "")
        elif plugin.path is not None and not plugin.builtin:
            source = str(plugin.path)
        nodes = f"{len(plugin.node_types)} nodes" if plugin.loaded else ""
        print(f"{plugin.name:<20} {plugin.version:<10} {plugin.status:<12} {plugin.origin:<11} {nodes:<9} {source}".rstrip())
        if plugin.error:
            print(f"    {plugin.error}")
    return EXIT_OK


def _print_findings(findings: list[Any], stream: Any) -> None:
    from studio.plugins.scan import summary

    print(f"scan: {summary(findings)}", file=stream)
    for finding in findings[:40]:
        print(f"  {finding}", file=stream)
    if len(findings) > 40:
        print(f"  … and {len(findings) - 40} more", file=stream)


def _install(args: argparse.Namespace) -> int:
    from studio.plugins.install import install

    result = _trusted(lambda: install(args.source, trust=args.trust, dev=args.dev, pip_args=_pip_args(args)))
    if result is None:
        return EXIT_BAD_INPUT
    _print_findings(result.findings, sys.stdout)
    _report_installed("installed", result)
    return EXIT_OK


def _trusted(action: Any) -> Any:
    """Run an install or update; without trust, show what the scan found and return None."""
    from studio.plugins.install import TrustRequired

    try:
        return action()
    except TrustRequired as exc:
        _print_findings(exc.findings, sys.stderr)
        print(f"nuance: error: {exc}", file=sys.stderr)
        return None


def _report_installed(verb: str, result: Any) -> None:
    record = result.record
    where = f" from {record.source}" + (f" at commit {record.commit}" if record.commit else "")
    print(f"{verb} plugin '{result.name}' {result.version}{where} into {result.path}")
    if result.packages:
        listed = ", ".join(f"{n} {v}" for n, v in sorted(result.packages.items()))
        print(f"requirements installed into its private folder: {listed}")
    manager = _manager()
    plugin = manager.get(result.name)
    if plugin is not None and plugin.loaded:
        print(f"it provides {len(plugin.node_types)} node type(s): {', '.join(plugin.node_types)}")
    elif plugin is not None:
        print(f"warning: it does not load: {plugin.error or plugin.status}", file=sys.stderr)
    print(NEXT_START)


def _update(args: argparse.Namespace) -> int:
    from studio.plugins.install import update
    from studio.plugins.state import PluginState

    before = PluginState.load().installed.get(args.name)
    result = _trusted(lambda: update(args.name, trust=args.trust, rev=args.rev, pip_args=_pip_args(args)))
    if result is None:
        return EXIT_BAD_INPUT
    if before is not None and before.commit and before.commit == result.record.commit:
        print(f"plugin '{args.name}' is already at commit {before.commit}")
    _report_installed("updated", result)
    return EXIT_OK


def _toggle(name: str, enable: bool) -> int:
    manager = _manager()
    change = manager.enable(name) if enable else manager.disable(name)
    print(change.message)
    print(NEXT_START)
    return EXIT_OK


def _uninstall(name: str) -> int:
    from studio.plugins.install import uninstall

    removed = uninstall(name)
    for path in removed:
        print(f"removed {path}")
    print(f"plugin '{name}' uninstalled; {NEXT_START}")
    return EXIT_OK


def _scan(source_text: str) -> int:
    import tempfile

    from studio.plugins.install import parse_source, stage
    from studio.plugins.scan import scan_folder

    source = parse_source(source_text)
    with tempfile.TemporaryDirectory(prefix="nuance-scan-") as tmp:
        staged = stage(source, Path(tmp))
        findings = scan_folder(staged.root)
        print(f"plugin '{staged.name}' {staged.manifest.version}")
        _print_findings(findings, sys.stdout)
    return EXIT_OK


def _new(name: str, where: Path) -> int:
    from studio.core.resources import resource_path

    check_name(name, "nuance plugins new")
    target = where / name
    if target.exists():
        raise PluginError(f"{target} already exists")
    template = resource_path("plugin_template")
    shutil.copytree(template, target, ignore=shutil.ignore_patterns("__pycache__"))
    for path in sorted(target.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".toml", ".md"):
            path.write_text(path.read_text(encoding="utf-8").replace("myplugin", name), encoding="utf-8")
    print(f"created {target}; try it with: nuance plugins install --dev --trust {target}")
    return EXIT_OK
