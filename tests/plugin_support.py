"""Building small plugins for tests: folders, archives, wheels and git repositories."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import textwrap
import zipfile
from pathlib import Path

NODE_TEMPLATE = '''
from studio.api import Int, Node, NodePack, Output


class {cls}(Node):
    NAME = "{node}"
    CATEGORY = "test"
    DESCRIPTION = "Adds {amount}."
    INPUTS = [Int("value", 1)]
    OUTPUTS = [Output("result", "INT")]

    def run(self, ctx, value):
        {body}
        return value + {amount}


NODE_PACK = NodePack(name="{name}", version="{version}", nodes=[{cls}])
'''


def plugin_source(name: str, node: str = "Add", amount: int = 1, version: str = "1.0", body: str = "pass",
                  prelude: str = "") -> str:
    return textwrap.dedent(prelude) + NODE_TEMPLATE.format(
        cls=node, node=node, amount=amount, name=name, version=version, body=body)


def make_plugin(root: Path, name: str, *, node: str = "Add", amount: int = 1, version: str = "1.0",
                api_version: int = 1, requirements: tuple[str, ...] = (), body: str = "pass", prelude: str = "",
                init: str | None = None, folder: str | None = None, extra_toml: str = "") -> Path:
    """A plugin folder ``root/<folder or name>`` with one node ``<name>.<node>`` adding ``amount``."""
    path = root / (folder or name)
    path.mkdir(parents=True, exist_ok=True)
    reqs = ", ".join(f'"{r}"' for r in requirements)
    (path / "plugin.toml").write_text(
        f'name = "{name}"\nversion = "{version}"\napi_version = {api_version}\ndescription = "Test plugin {name}"\n'
        f'author = "Tests"\nrequirements = [{reqs}]\n{extra_toml}', encoding="utf-8")
    source = init if init is not None else plugin_source(name, node, amount, version, body, prelude)
    (path / "__init__.py").write_text(source, encoding="utf-8")
    return path


def zip_folder(folder: Path, target: Path, *, wrap: bool = True) -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                rel = path.relative_to(folder.parent if wrap else folder).as_posix()
                archive.write(path, rel)
    return target


def build_wheel(target_dir: Path, dist: str, version: str, files: dict[str, str], *,
                entry_points: dict[str, str] | None = None, requires: tuple[str, ...] = ()) -> Path:
    """A pure-Python wheel written by hand (no build backend needed)."""
    target_dir.mkdir(parents=True, exist_ok=True)
    norm = dist.replace("-", "_")
    info = f"{norm}-{version}.dist-info"
    contents = dict(files)
    meta = ["Metadata-Version: 2.1", f"Name: {dist}", f"Version: {version}", f"Summary: test package {dist}"]
    meta += [f"Requires-Dist: {r}" for r in requires]
    contents[f"{info}/METADATA"] = "\n".join(meta) + "\n"
    contents[f"{info}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    if entry_points:
        contents[f"{info}/entry_points.txt"] = "[nuance.plugins]\n" + "".join(
            f"{k} = {v}\n" for k, v in entry_points.items())
    record = []
    for name, text in contents.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    contents[f"{info}/RECORD"] = "\n".join(record) + "\n"
    path = target_dir / f"{norm}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in contents.items():
            archive.writestr(name, text)
    return path


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", "-c", "user.name=Tests", "-c", "user.email=tests@example.com",
                             "-c", "init.defaultBranch=main", "-C", str(repo), *args],
                            capture_output=True, text=True, check=True)
    return result.stdout.strip()


def snapshot_tree(root: Path) -> dict[str, int]:
    """Every file under ``root`` with its size (missing root: empty), to prove nothing changed."""
    if not root.exists():
        return {}
    return {p.relative_to(root).as_posix(): p.stat().st_size for p in sorted(root.rglob("*")) if p.is_file()}
