"""Socket types and the rules for connecting them.

A socket type is a string: a single name (``"IMAGE"``), the wildcard ``"*"`` that accepts or gives
anything, or a union written with ``|`` (``"INT|FLOAT"``). Rules live here, in one place, so the
editor, the validator and the engine can never disagree about what may be wired to what.
"""

from __future__ import annotations

from functools import lru_cache

ANY = "*"

#: Types whose values can be typed into a widget and stored as a constant in a workflow file.
WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN"})


@lru_cache(maxsize=1024)
def type_members(type_name: str) -> frozenset[str] | None:
    """The set of plain type names in ``type_name``, or None when it is the wildcard."""
    parts = frozenset(p.strip() for p in type_name.split("|") if p.strip())
    if not parts or ANY in parts:
        return None
    return parts


def is_valid_type_name(type_name: object) -> bool:
    """Whether ``type_name`` is usable as a socket type (non-empty, no stray separators)."""
    if not isinstance(type_name, str) or not type_name.strip():
        return False
    return all(p.strip() and " " not in p.strip() for p in type_name.split("|"))


def describe_type(type_name: str) -> str:
    """Plain-English form: ``INT|FLOAT`` reads as ``INT or FLOAT``, ``*`` as ``any type``."""
    members = type_members(type_name)
    if members is None:
        return "any type"
    ordered = [p.strip() for p in type_name.split("|") if p.strip()]
    if len(ordered) == 1:
        return ordered[0]
    return ", ".join(ordered[:-1]) + " or " + ordered[-1]


@lru_cache(maxsize=4096)
def is_compatible(output_type: str, input_type: str) -> bool:
    """Whether a value of ``output_type`` may flow into an input of ``input_type``.

    The wildcard matches everything on either side. Otherwise every type the output can give
    must be one the input accepts: an ``INT|FLOAT`` output may feed an ``INT|FLOAT|STRING`` input,
    but not an ``INT`` one, since at run time it might hand over a FLOAT.
    """
    out_members = type_members(output_type)
    in_members = type_members(input_type)
    if out_members is None or in_members is None:
        return True
    return out_members <= in_members


def connection_problem(
    output_type: str,
    input_type: str,
    *,
    input_label: str = "the input",
    output_label: str = "the output",
) -> str | None:
    """Why an output may not be connected to an input, in plain English; None when it may.

    Labels are what the user sees, e.g. ``"Steps"`` and ``"Load Image"``, giving messages such as
    ``"Steps expects INT but Load Image gives IMAGE"``.
    """
    if is_compatible(output_type, input_type):
        return None
    return f"{input_label} expects {describe_type(input_type)} but {output_label} gives {describe_type(output_type)}"
