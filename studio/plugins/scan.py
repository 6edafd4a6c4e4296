"""A static look at a plugin's code before it is trusted: what in it could run programs, reach the
network, evaluate strings as code or hide what it does.

This is a reading aid for the person deciding whether to trust a plugin, not a sandbox: Python
code can do anything its author wants, and a determined author can hide it from any scanner. The
plugin guide says so, and installing code always needs explicit trust.
"""

from __future__ import annotations

import ast
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

#: module prefix → (category, why it matters)
RISKY_MODULES: dict[str, tuple[str, str]] = {
    "subprocess": ("runs programs", "can start other programs"),
    "pty": ("runs programs", "can start other programs"),
    "multiprocessing": ("runs programs", "can start processes"),
    "socket": ("network", "opens network connections"),
    "ssl": ("network", "opens encrypted network connections"),
    "urllib": ("network", "downloads or uploads over the network"),
    "http": ("network", "talks HTTP"),
    "ftplib": ("network", "talks FTP"),
    "smtplib": ("network", "sends e-mail"),
    "requests": ("network", "downloads or uploads over the network"),
    "httpx": ("network", "downloads or uploads over the network"),
    "aiohttp": ("network", "downloads or uploads over the network"),
    "websocket": ("network", "opens web sockets"),
    "websockets": ("network", "opens web sockets"),
    "paramiko": ("network", "opens SSH connections"),
    "ctypes": ("native code", "calls native code directly"),
    "cffi": ("native code", "calls native code directly"),
    "pickle": ("unsafe loading", "unpickling can run arbitrary code"),
    "dill": ("unsafe loading", "unpickling can run arbitrary code"),
    "marshal": ("unsafe loading", "loads compiled code objects"),
    "shutil": ("files", "can delete or move whole folders"),
}
#: risky calls by dotted name
RISKY_CALLS: dict[str, tuple[str, str]] = {
    "eval": ("evaluates code", "runs a string as Python code"),
    "exec": ("evaluates code", "runs a string as Python code"),
    "compile": ("evaluates code", "compiles a string into code"),
    "__import__": ("evaluates code", "imports a module named by a string"),
    "importlib.import_module": ("evaluates code", "imports a module named by a string"),
    "os.system": ("runs programs", "runs a shell command"),
    "os.popen": ("runs programs", "runs a shell command"),
    "os.spawnl": ("runs programs", "starts a program"),
    "os.spawnv": ("runs programs", "starts a program"),
    "os.execv": ("runs programs", "replaces the process with another program"),
    "os.execl": ("runs programs", "replaces the process with another program"),
    "os.startfile": ("runs programs", "opens a file with its program"),
    "os.remove": ("files", "deletes files"),
    "os.unlink": ("files", "deletes files"),
    "os.rmdir": ("files", "deletes folders"),
    "torch.load": ("unsafe loading", "torch.load can unpickle (run) code unless weights_only=True"),
    "base64.b64decode": ("obfuscation", "decodes base64 data (often used to hide code)"),
    "base64.b32decode": ("obfuscation", "decodes base32 data"),
    "base64.a85decode": ("obfuscation", "decodes ascii85 data"),
    "codecs.decode": ("obfuscation", "decodes data (rot13 and the like hide code)"),
    "zlib.decompress": ("obfuscation", "decompresses embedded data"),
    "bytes.fromhex": ("obfuscation", "turns hex text into bytes"),
}
NATIVE_SUFFIXES = (".so", ".pyd", ".dll", ".dylib", ".exe", ".bin")
_BLOB_RE = re.compile(r"^[A-Za-z0-9+/=_\-]{120,}$")
_HEX_RE = re.compile(r"^(?:\\x[0-9a-fA-F]{2}|[0-9a-fA-F]{2}){60,}$")


@dataclass(frozen=True)
class Finding:
    """One risky thing: where it is, which kind, and a plain sentence about it."""

    path: str
    line: int
    category: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.category}: {self.message}"


def scan_folder(folder: Path) -> list[Finding]:
    """Findings for every Python file and native binary under ``folder``, in file order."""
    findings: list[Finding] = []
    for path in sorted(folder.rglob("*")):
        if any(part.startswith(".") or part == "__pycache__" for part in path.relative_to(folder).parts):
            continue
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and path.suffix.lower() in NATIVE_SUFFIXES:
            findings.append(Finding(rel, 0, "native code", "a compiled binary; its behaviour cannot be read"))
        elif path.is_file() and path.suffix == ".py":
            try:
                source = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                findings.append(Finding(rel, 0, "unreadable", f"could not be read as UTF-8 text ({exc})"))
                continue
            findings.extend(scan_source(source, rel))
    return findings


def scan_source(source: str, rel: str) -> list[Finding]:
    """Findings for one Python source file."""
    try:
        tree = ast.parse(source, filename=rel)
    except SyntaxError as exc:
        return [Finding(rel, exc.lineno or 0, "unparsable", f"is not valid Python ({exc.msg}), so it was not checked")]
    visitor = _Visitor(rel)
    visitor.visit(tree)
    return visitor.findings


class _Visitor(ast.NodeVisitor):
    def __init__(self, rel: str):
        self.rel = rel
        self.findings: list[Finding] = []
        self.aliases: dict[str, str] = {}

    def add(self, node: ast.AST, category: str, message: str) -> None:
        self.findings.append(Finding(self.rel, getattr(node, "lineno", 0), category, message))

    def _module(self, node: ast.AST, name: str) -> None:
        for prefix, (category, why) in RISKY_MODULES.items():
            if name == prefix or name.startswith(prefix + "."):
                self.add(node, category, f"imports {name}: {why}")
                return

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._module(node, alias.name)
            self.aliases[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module and node.level == 0:
            self._module(node, node.module)
            for alias in node.names:
                self.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = self._dotted(node.func)
        if name is not None:
            head, _, rest = name.partition(".")
            full = self.aliases.get(head, head) + ("." + rest if rest else "")
            hit = RISKY_CALLS.get(full) or RISKY_CALLS.get(name)
            if hit is not None and not (full == "torch.load" and _weights_only(node)):
                self.add(node, hit[0], f"calls {full}(): {hit[1]}")
            elif full.startswith(("subprocess.", "os.exec", "os.spawn")) and hit is None:
                self.add(node, "runs programs", f"calls {full}(): starts another program")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, (str, bytes)) and len(value) >= 120:
            text = value.decode("latin-1") if isinstance(value, bytes) else value
            compact = "".join(text.split())
            if (_BLOB_RE.match(compact) and _entropy(compact) > 4.5) or _HEX_RE.match(compact):
                self.add(node, "obfuscation", f"a {len(text)}-character encoded-looking string (hidden data or code?)")

    @staticmethod
    def _dotted(node: ast.AST) -> str | None:
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name):
            parts.append(node.id)
            return ".".join(reversed(parts))
        return None


def _weights_only(call: ast.Call) -> bool:
    return any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
               for k in call.keywords)


def _entropy(text: str) -> float:
    counts = Counter(text)
    total = len(text)
    return -sum(n / total * math.log2(n / total) for n in counts.values())


def summary(findings: list[Finding]) -> str:
    """One line for dialogs and the CLI: counts per category."""
    if not findings:
        return "nothing risky found (this is not a guarantee: read the code or trust its author)"
    counts = Counter(f.category for f in findings)
    return ", ".join(f"{n} × {category}" for category, n in counts.most_common())
