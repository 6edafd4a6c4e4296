"""Tests for myplugin: load the pack the way the app does, then check what the node means."""

from __future__ import annotations

from pathlib import Path

import torch

from studio.plugins import LoadReport, create_registry, register_pack
from studio.plugins.importing import import_package

PLUGIN = Path(__file__).resolve().parents[1]


def load_pack():
    return import_package(PLUGIN, "nuance_plugins.myplugin").NODE_PACK


def test_the_pack_registers_without_errors():
    registry, report = create_registry(), LoadReport()
    register_pack(registry, load_pack(), builtin=False, report=report)
    assert report.errors == [] and "myplugin.Brighten" in registry


def test_brighten_adds_and_clamps():
    brighten = load_pack().nodes[0]()
    image = torch.tensor([0.0, 0.5, 0.95]).reshape(1, 1, 3, 1).expand(1, 1, 3, 3)
    out = brighten.run(None, image, amount=0.1)
    assert torch.allclose(out[0, 0, :, 0], torch.tensor([0.1, 0.6, 1.0]))
