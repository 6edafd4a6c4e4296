"""Cache signatures: what identifies a node's output across runs and workflows.

A node's signature hashes its type and version, its constant inputs, the signatures (and output
slots) of the values wired into it, and its optional fingerprint of outside state. Node ids are
not part of it, so identical nodes in different workflows share cached results. The digest is
128-bit BLAKE2b over an unambiguous (length-prefixed) encoding, so distinct inputs cannot
collide by concatenation.
"""

from __future__ import annotations

import json
from typing import Any


def encode_value(value: Any) -> bytes:
    """Unambiguous bytes for a constant: ``1``, ``1.0``, ``True`` and ``"1"`` all differ."""
    kind = type(value)
    if kind is str:
        raw = value.encode("utf-8", "surrogatepass")
        return b"s%d:" % len(raw) + raw
    if kind is bool:
        return b"T" if value else b"F"
    if kind is int:
        return b"i%d;" % value
    if kind is float:
        return b"f" + repr(value).encode() + b";"
    if value is None:
        return b"N"
    raw = json.dumps(value, sort_keys=True, default=repr, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return b"j%d:" % len(raw) + raw


def output_key(signature: bytes, slot: int) -> bytes:
    """Identity of one output value: its node's signature and the slot it leaves by."""
    return signature + slot.to_bytes(2, "little")


def constant_key(value: Any) -> bytes:
    """Identity of a constant passed through a bypassed node (distinct from any output key)."""
    return b"C" + encode_value(value)
