"""The node registry: which node types exist and under which names.

Built-in packs own bare names (ComfyUI's core names where ComfyUI has the node); plugin packs are
namespaced ``pack.Node`` and may declare aliases. Registration is all-or-nothing for a node: a
duplicate id or a clashing alias refuses it with a message and leaves the registry as it was.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from studio.core.errors import RegistryError
from studio.core.nodedef import API_VERSION, Input, Node, NodeSpec, Output
from studio.core.types import is_valid_type_name

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_PACK_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_ALIAS_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-.]*$")


class NodeRegistry:
    """Maps type ids (and aliases) to node specs."""

    def __init__(self) -> None:
        self._specs: dict[str, NodeSpec] = {}
        self._aliases: dict[str, str] = {}
        #: Set by the plugin manager: says which plugin provides a missing type and what to do.
        self.missing_hint: Callable[[str], str] | None = None

    def explain_missing(self, type_id: str) -> str:
        """Why ``type_id`` is not available, in words a user can act on."""
        if self.missing_hint is not None:
            try:
                return self.missing_hint(type_id)
            except Exception:  # a hint is a courtesy; never let it break validation
                pass
        return f"no installed node or plugin provides {type_id!r} (install the plugin that does, or remove the node)"

    def register(self, cls: type[Node], *, pack: str | None = None) -> NodeSpec:
        """Add ``cls``; ``pack=None`` means a built-in node with a bare name."""
        where = f"{cls.__module__}.{cls.__qualname__}"
        if not (isinstance(cls, type) and issubclass(cls, Node)):
            raise RegistryError(f"{where} is not a subclass of studio.api.Node")
        name = cls.NAME
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise RegistryError(f"{where}: NAME must be a name without dots or spaces, got {name!r}")
        if pack is not None and not _PACK_RE.match(pack):
            raise RegistryError(f"{where}: pack name {pack!r} must be a name without dots or spaces")
        if not isinstance(cls.API_VERSION, int) or cls.API_VERSION > API_VERSION:
            raise RegistryError(
                f"{where} needs node API version {cls.API_VERSION}, but this Nuance Studio provides "
                f"version {API_VERSION}; update Nuance Studio to use it"
            )
        type_id = f"{pack}.{name}" if pack else name
        inputs = tuple(cls.INPUTS)
        outputs = tuple(cls.OUTPUTS)
        self._check_sockets(where, inputs, outputs)
        aliases = tuple(cls.ALIASES)
        self._check_free(type_id, where, f"type id {type_id!r}")
        for alias in aliases:
            if not isinstance(alias, str) or not _ALIAS_RE.match(alias):
                raise RegistryError(f"{where}: alias {alias!r} is not a valid type name")
            if alias == type_id:
                raise RegistryError(f"{where}: alias {alias!r} is the node's own type id")
            self._check_free(alias, where, f"alias {alias!r}")
        if len(set(aliases)) != len(aliases):
            raise RegistryError(f"{where}: an alias is listed twice")
        spec = NodeSpec(
            type=type_id, cls=cls, pack=pack, inputs=inputs, outputs=outputs,
            input_map={i.name: i for i in inputs}, aliases=aliases,
        )
        self._specs[type_id] = spec
        for alias in aliases:
            self._aliases[alias] = type_id
        return spec

    def _check_free(self, name: str, where: str, what: str) -> None:
        if name in self._specs:
            owner = self._specs[name].cls
            raise RegistryError(
                f"{where}: {what} is already taken by {owner.__module__}.{owner.__qualname__}; "
                "node type ids must be unique"
            )
        if name in self._aliases:
            raise RegistryError(f"{where}: {what} is already an alias of {self._aliases[name]!r}")

    @staticmethod
    def _check_sockets(where: str, inputs: tuple[Input, ...], outputs: tuple[Output, ...]) -> None:
        seen: set[str] = set()
        for inp in inputs:
            if not isinstance(inp, Input):
                raise RegistryError(f"{where}: INPUTS must hold studio.api.Input objects, got {inp!r}")
            if not inp.name.isidentifier():
                raise RegistryError(f"{where}: input name {inp.name!r} must be a Python identifier")
            if inp.name in seen:
                raise RegistryError(f"{where}: input {inp.name!r} is declared twice")
            seen.add(inp.name)
            if not is_valid_type_name(inp.type):
                raise RegistryError(f"{where}: input {inp.name!r} has an invalid type {inp.type!r}")
            if inp.has_default and not callable(inp.choices):
                try:
                    inp.coerce(inp.default)
                except ValueError as exc:
                    raise RegistryError(f"{where}: default of input {inp.name!r} is invalid: {exc}") from None
        for out in outputs:
            if not isinstance(out, Output):
                raise RegistryError(f"{where}: OUTPUTS must hold studio.api.Output objects, got {out!r}")
            if not is_valid_type_name(out.type):
                raise RegistryError(f"{where}: output {out.name!r} has an invalid type {out.type!r}")

    def unregister(self, type_id: str) -> None:
        """Remove a node type and its aliases (a plugin being disabled)."""
        spec = self._specs.pop(type_id)
        for alias in spec.aliases:
            self._aliases.pop(alias, None)

    def canonical(self, type_id: str) -> str | None:
        """The type id that ``type_id`` names, following aliases; None when unknown."""
        if type_id in self._specs:
            return type_id
        return self._aliases.get(type_id)

    def spec(self, type_id: str) -> NodeSpec | None:
        """The spec for a type id or alias, or None when no such node is installed."""
        spec = self._specs.get(type_id)
        if spec is None and type_id in self._aliases:
            spec = self._specs[self._aliases[type_id]]
        return spec

    def __contains__(self, type_id: object) -> bool:
        return isinstance(type_id, str) and self.canonical(type_id) is not None

    def __iter__(self) -> Iterator[NodeSpec]:
        return iter(sorted(self._specs.values(), key=lambda s: (s.category, s.type)))

    def __len__(self) -> int:
        return len(self._specs)
