"""An independent check of ``widget_sequence`` against ComfyUI's own widget layouts.

``tests/fixtures/comfyui/widget_orders.json`` holds, for every type in ``COMFY_CORE_TYPES``, the
``widgets_values`` layout ComfyUI's current frontend writes. It was written by hand from ComfyUI's
node definitions and frontend rules (its ``_sources`` key names the files and commits), not from
our node declarations, so a node whose inputs drift from ComfyUI's shows up here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.core.comfy_export import COMFY_CORE_TYPES
from studio.core.comfy_ui import widget_sequence

FIXTURE = Path(__file__).parent / "fixtures" / "comfyui" / "widget_orders.json"
ORDERS: dict[str, list[str]] = {k: v for k, v in json.loads(FIXTURE.read_text(encoding="utf-8")).items()
                                if not k.startswith("_")}

#: Types whose ComfyUI layout is longer than ours only by trailing widgets our node lacks (newer
#: ComfyUI added them); for these, our sequence need only be a prefix. Each entry says why.
#: Currently empty: every core type matches ComfyUI's full current layout.
PREFIX_OK: dict[str, str] = {}


@pytest.fixture(scope="module")
def registry():
    from studio.plugins import create_registry

    return create_registry()


def test_every_core_type_has_a_fixture_entry() -> None:
    missing = sorted(COMFY_CORE_TYPES - ORDERS.keys())
    assert not missing, f"add ComfyUI's widget order for {missing} to {FIXTURE.name} (from ComfyUI's source)"


def test_fixture_lists_only_core_types() -> None:
    assert not sorted(ORDERS.keys() - COMFY_CORE_TYPES)
    assert not sorted(PREFIX_OK.keys() - COMFY_CORE_TYPES)


@pytest.mark.parametrize("node_type", sorted(COMFY_CORE_TYPES))
def test_widget_sequence_matches_comfyui(registry, node_type: str) -> None:
    expected = ORDERS.get(node_type)
    if expected is None:
        pytest.fail(f"{node_type} has no entry in {FIXTURE.name}")
    ours = list(widget_sequence(registry.spec(node_type)))
    if node_type in PREFIX_OK:
        assert len(ours) < len(expected), f"{node_type} now matches in full: drop it from PREFIX_OK"
        assert ours == expected[:len(ours)], f"{node_type}: ComfyUI {expected}, ours {ours}"
    else:
        assert ours == expected, f"{node_type}: ComfyUI {expected}, ours {ours}"
