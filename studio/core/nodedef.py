"""The node-authoring API: how a node declares its inputs, outputs and behaviour.

A node is a class. It states its sockets declaratively, so the editor can draw widgets, the
validator can check a graph and ``nuance nodes --json`` can describe it without running anything;
its one ``run`` method is a function of its inputs, which is what makes caching sound.

Plugin authors import these names from :mod:`studio.api`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Container, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from studio.core.errors import InputValueError
from studio.core.types import ANY, WIDGET_TYPES, type_members

if TYPE_CHECKING:
    from studio.engine.context import RunContext

#: Version of this API. A node that sets ``API_VERSION`` higher than this is refused at
#: registration with a message, instead of failing in odd ways at run time.
API_VERSION = 1


class _Missing:
    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


#: Marks "no default": such an input must be connected or given a value.
MISSING: Any = _Missing()


@dataclass(frozen=True)
class Input:
    """One input socket (and, for widget types, the widget that edits its constant value)."""

    name: str
    type: str
    default: Any = MISSING
    optional: bool = False
    min: float | None = None
    max: float | None = None
    step: float | None = None
    choices: Sequence[Any] | Callable[[], Sequence[Any]] | None = None
    multiline: bool = False
    tooltip: str = ""
    display_name: str | None = None

    @property
    def required(self) -> bool:
        return not self.optional

    @property
    def has_default(self) -> bool:
        return self.default is not MISSING

    @property
    def label(self) -> str:
        """What the user sees: the display name, else the name with spaces for underscores."""
        return self.display_name or self.name.replace("_", " ")

    @property
    def accepts_constant(self) -> bool:
        """Whether a value can be typed in (a widget) rather than only wired."""
        members = type_members(self.type)
        return members is None or bool(members & WIDGET_TYPES)

    def current_choices(self) -> list[Any] | None:
        """The allowed values now; a callable is asked each time (e.g. files in a folder)."""
        if self.choices is None:
            return None
        options = self.choices() if callable(self.choices) else self.choices
        return list(options)

    def coerce(self, value: Any) -> Any:
        """Return ``value`` as this input's type, or raise InputValueError saying why not."""
        members = type_members(self.type)
        if members is None:
            result = value
        else:
            result = _coerce_to_members(value, self.type, members)
        self.check_bounds(result)
        return result

    def check_bounds(self, value: Any) -> None:
        """Range and choice checks, shared by constants and values arriving over a link."""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if value != value and (self.min is not None or self.max is not None):
                raise InputValueError("NaN (not a number) is outside every range")
            if self.min is not None and value < self.min:
                raise InputValueError(f"{_show(value)} is below the minimum {_show(self.min)}")
            if self.max is not None and value > self.max:
                raise InputValueError(f"{_show(value)} is above the maximum {_show(self.max)}")
        if self.choices is not None:
            options = self.current_choices() or []
            if value not in options:
                near = closest_choices(value, options) if isinstance(value, str) else []
                if near:  # a model file renamed or in another folder: say which ones look like it
                    shown = ", ".join(_show(o) for o in near)
                    raise InputValueError(f"{_show(value)} is not one of the choices; the closest: {shown}")
                shown = ", ".join(_show(o) for o in options[:12]) + (", …" if len(options) > 12 else "")
                raise InputValueError(f"{_show(value)} is not one of the choices ({shown or 'none available'})")

    def parse_text(self, text: str) -> Any:
        """Parse a command-line string by this input's type (``true``/``false`` for booleans)."""
        members = type_members(self.type)
        if members is None:
            return self.coerce(text)
        errors = []
        for member in _ordered_members(self.type):
            if member not in members:
                continue
            try:
                return self.coerce(_parse_as(member, text))
            except (InputValueError, ValueError) as exc:
                errors.append(str(exc))
        if not members & WIDGET_TYPES:
            raise InputValueError(f"a {self.type} input cannot be given as text; connect it instead")
        raise InputValueError(errors[0] if len(errors) == 1 else "; ".join(errors))


def _ordered_members(type_name: str) -> list[str]:
    return [p.strip() for p in type_name.split("|") if p.strip()]


def _parse_as(member: str, text: str) -> Any:
    if member == "INT":
        try:
            return int(text.strip(), 10)
        except ValueError:
            raise InputValueError(f"expects a whole number, got {_show(text)}") from None
    if member == "FLOAT":
        try:
            return float(text)
        except ValueError:
            raise InputValueError(f"expects a number, got {_show(text)}") from None
    if member == "BOOLEAN":
        lowered = text.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        raise InputValueError(f"expects true or false, got {_show(text)}")
    return text


_EXACT = {"INT": int, "FLOAT": float, "STRING": str, "BOOLEAN": bool}


def _coerce_to_members(value: Any, type_name: str, members: frozenset[str]) -> Any:
    ordered = _ordered_members(type_name)
    for member in ordered:  # a value already of a member type keeps that type (2.0 stays FLOAT)
        if type(value) is _EXACT.get(member):
            return value
    for member in ordered:
        converted = _coerce_member(value, member)
        if converted is not MISSING:
            return converted
    if not members & WIDGET_TYPES:
        raise InputValueError(f"a {type_name} input cannot hold a typed-in value; connect it instead")
    wanted = " or ".join(_KIND_WORDS.get(m, m) for m in _ordered_members(type_name) if m in WIDGET_TYPES)
    raise InputValueError(f"expects {wanted}, got {_describe_value(value)}")


_KIND_WORDS = {"INT": "a whole number", "FLOAT": "a number", "STRING": "text", "BOOLEAN": "true or false"}


def _coerce_member(value: Any, member: str) -> Any:
    if member == "INT":
        if isinstance(value, bool):
            return MISSING
        if isinstance(value, int):
            return value
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)
        return MISSING
    if member == "FLOAT":
        if isinstance(value, bool):
            return MISSING
        if isinstance(value, (int, float)):
            try:
                return float(value)
            except OverflowError:  # a JSON integer with hundreds of digits
                return MISSING
        return MISSING
    if member == "STRING":
        return value if isinstance(value, str) else MISSING
    if member == "BOOLEAN":
        return value if isinstance(value, bool) else MISSING
    return MISSING


def _describe_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float, str)):
        return f"{type(value).__name__} {_show(value)}"
    if value is None:
        return "nothing (null)"
    return f"a {type(value).__name__}"


def closest_choices(value: str, options: Sequence[Any], count: int = 3) -> list[str]:
    """The text options most like ``value``: the same file name in another folder first, then by spelling."""
    import difflib

    texts = [o for o in options if isinstance(o, str)]
    base = value.replace("\\", "/").rsplit("/", 1)[-1].lower()
    names = {o: o.rsplit("/", 1)[-1].lower() for o in texts}
    same_name = [o for o in texts if names[o] == base]
    similar = difflib.get_close_matches(value, texts, n=count, cutoff=0.5)
    by_name = difflib.get_close_matches(base, list(set(names.values())), n=count, cutoff=0.5)
    named = [o for name in by_name for o in texts if names[o] == name]
    ordered: list[str] = []
    for option in [*same_name, *similar, *named]:
        if option not in ordered:
            ordered.append(option)
    return ordered[:count]


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "…"


@dataclass(frozen=True)
class Output:
    """One output socket."""

    name: str
    type: str
    tooltip: str = ""


# Helpers so that declarations read like the widgets they produce.
def Int(name: str, default: int | Any = 0, *, min: int | None = None, max: int | None = None,
        step: int = 1, **kw: Any) -> Input:
    """A whole-number input with a spin/drag widget."""
    return Input(name, "INT", default=default, min=min, max=max, step=step, **kw)


def Float(name: str, default: float | Any = 0.0, *, min: float | None = None, max: float | None = None,
          step: float = 0.01, **kw: Any) -> Input:
    """A number input with a drag widget."""
    return Input(name, "FLOAT", default=default, min=min, max=max, step=step, **kw)


def String(name: str, default: str | Any = "", *, multiline: bool = False, **kw: Any) -> Input:
    """A text input; ``multiline`` makes the widget a text box (prompts)."""
    return Input(name, "STRING", default=default, multiline=multiline, **kw)


def Boolean(name: str, default: bool | Any = False, **kw: Any) -> Input:
    """A checkbox input."""
    return Input(name, "BOOLEAN", default=default, **kw)


def Combo(name: str, choices: Sequence[Any] | Callable[[], Sequence[Any]], default: Any = MISSING,
          **kw: Any) -> Input:
    """A drop-down of choices; ``choices`` may be a callable, asked again on refresh."""
    if default is MISSING and not callable(choices) and len(choices) > 0:
        default = choices[0]
    return Input(name, "STRING", default=default, choices=choices, **kw)


class Node:
    """Base class of every node, built-in or from a plugin.

    Subclasses set the class attributes below and implement :meth:`run`. ``run`` receives a
    :class:`~studio.engine.context.RunContext` (progress, cancellation, output folder) and the
    input values as keyword arguments; optional inputs that are neither wired nor set are left
    out. It returns one value per declared output: a tuple, a single value when there is one
    output, a dict keyed by output name, or None when there are none.
    """

    #: Type name inside its pack: built-in packs use it bare, plugin packs prefix ``pack.``.
    NAME: ClassVar[str] = ""
    DISPLAY_NAME: ClassVar[str | None] = None
    CATEGORY: ClassVar[str] = "misc"
    DESCRIPTION: ClassVar[str] = ""
    INPUTS: ClassVar[Sequence[Input]] = ()
    OUTPUTS: ClassVar[Sequence[Output]] = ()
    #: Output nodes (save, preview) are what a run is for; the graph runs back from them.
    OUTPUT_NODE: ClassVar[bool] = False
    #: Bump when inputs change meaning; :meth:`migrate` upgrades older saved nodes.
    VERSION: ClassVar[int] = 1
    #: ``{"old_name": "new_name"}``: saved workflows using old input names still load.
    RENAMED_INPUTS: ClassVar[Mapping[str, str]] = {}
    #: Other type names this node answers to (e.g. its name before it joined a pack).
    ALIASES: ClassVar[Sequence[str]] = ()
    #: False for nodes whose output differs run to run with equal inputs: never cached.
    DETERMINISTIC: ClassVar[bool] = True
    #: The node API version the node was written against.
    API_VERSION: ClassVar[int] = 1

    def run(self, ctx: RunContext, **inputs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement run()")

    @classmethod
    def fingerprint(cls, ctx: RunContext, **inputs: Any) -> Hashable | None:
        """State outside the inputs that the output depends on (e.g. a file's content hash).

        Part of the cache key: when it changes, the node runs again although no input did.
        ``ctx`` gives the run's options (the workflow's folder, the models folder) for resolving
        file names the way ``run`` will.
        """
        return None

    @classmethod
    def validate(cls, **inputs: Any) -> str | Sequence[str] | None:
        """Checks that need several inputs together; return message(s) to refuse the run."""
        return None

    @classmethod
    def migrate(cls, from_version: int, inputs: dict[str, Any]) -> dict[str, Any]:
        """Upgrade constant inputs saved by an older ``VERSION`` of this node."""
        return inputs


@dataclass(frozen=True)
class NodeSpec:
    """A registered node class with its full type id and quick lookups, built by the registry."""

    type: str
    cls: type[Node]
    pack: str | None
    inputs: tuple[Input, ...]
    outputs: tuple[Output, ...]
    input_map: Mapping[str, Input] = field(repr=False)
    aliases: tuple[str, ...] = ()

    @property
    def display_name(self) -> str:
        return self.cls.DISPLAY_NAME or self.cls.NAME

    @property
    def category(self) -> str:
        return self.cls.CATEGORY

    @property
    def description(self) -> str:
        return self.cls.DESCRIPTION

    @property
    def output_node(self) -> bool:
        return self.cls.OUTPUT_NODE

    @property
    def version(self) -> int:
        return self.cls.VERSION

    @property
    def deterministic(self) -> bool:
        return self.cls.DETERMINISTIC

    @cached_property
    def has_fingerprint(self) -> bool:
        return getattr(self.cls.fingerprint, "__func__", None) is not Node.fingerprint.__func__

    @cached_property
    def has_validate(self) -> bool:
        return getattr(self.cls.validate, "__func__", None) is not Node.validate.__func__

    def bypass_input(self, out_type: str, present: Container[str]) -> str | None:
        """The input a bypassed node passes to an output of ``out_type``: the first, in declaration
        order, among ``present`` whose type fits. One rule for the engine and the ComfyUI export."""
        from studio.core.types import is_compatible

        return next((i.name for i in self.inputs if i.name in present and is_compatible(i.type, out_type)), None)

    def renamed_input(self, name: str) -> str:
        """The current name of an input saved under ``name`` (unchanged if never renamed)."""
        return self.cls.RENAMED_INPUTS.get(name, name)

    def describe(self) -> dict[str, Any]:
        """JSON-ready description (what ``nuance nodes --json`` prints)."""
        inputs = []
        for inp in self.inputs:
            item: dict[str, Any] = {"name": inp.name, "type": inp.type, "required": inp.required}
            if inp.has_default:
                item["default"] = inp.default
            for key in ("min", "max", "step"):
                if getattr(inp, key) is not None:
                    item[key] = getattr(inp, key)
            choices = inp.current_choices()
            if choices is not None:
                item["choices"] = choices
            if inp.multiline:
                item["multiline"] = True
            if inp.tooltip:
                item["tooltip"] = inp.tooltip
            inputs.append(item)
        return {
            "type": self.type,
            "display_name": self.display_name,
            "category": self.category,
            "description": self.description,
            "output_node": self.output_node,
            "pack": self.pack,
            "inputs": inputs,
            "outputs": [{"name": o.name, "type": o.type} for o in self.outputs],
        }


__all__ = [
    "ANY",
    "API_VERSION",
    "MISSING",
    "Boolean",
    "Combo",
    "Float",
    "Input",
    "Int",
    "Node",
    "NodePack",
    "NodeSpec",
    "Output",
    "String",
]


@dataclass(frozen=True)
class NodePack:
    """A set of nodes shipped together: a built-in pack in ``nodes/`` or a community plugin.

    A pack module exposes one as ``NODE_PACK``. Built-in packs register their nodes under bare
    names; a plugin's nodes become ``<name>.<NAME>``.
    """

    name: str
    nodes: Sequence[type[Node]]
    description: str = ""
    version: str = "0"
    #: The node API version the pack was written for (a plugin without plugin.toml states it here).
    api_version: int = 1
    #: A module of the pack that only the editor imports, with ``register_gui(gui)`` (custom node widgets).
    gui: str | None = None
