"""Batches of runs: the batch count, seeds moving on between runs, the queue length, progress and ETA."""

from __future__ import annotations

import pytest
from editor_support import click, header_pos, key, open_window, slow_graph
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from studio.ui import panels

CTRL = Qt.KeyboardModifier.ControlModifier


@pytest.fixture
def window(qtbot, registry):
    yield from open_window(qtbot, registry)


def set_batch_count(spin, count: int) -> None:
    """Type a count into the tool bar's spin box, as a user does."""
    QTest.mouseDClick(spin.lineEdit(), Qt.MouseButton.LeftButton)
    QTest.keyClick(spin, Qt.Key.Key_A, CTRL)
    QTest.keyClicks(spin, str(count))
    QTest.keyClick(spin, Qt.Key.Key_Return)


def shown_texts(window, node_id):
    """What a Preview Any node showed in each finished run, in order."""
    texts: list[str] = []
    window.runs.finished.connect(
        lambda _tag, result, _error: result is not None and texts.append(result.nodes[node_id].ui.get("text")))
    return texts


def test_a_batch_runs_n_times_with_the_seed_moving_on_between_runs(window, qtbot):
    queue = panels.of(window).queue
    doc = window.document
    seed = doc.add_node("Seed", (0, 0), {"seed": 5})
    shown = doc.add_node("PreviewAny", (300, 0))
    doc.connect(seed, 0, shown, "source")
    doc.set_seed_control(seed, "seed", "increment")
    key(window.view, Qt.Key.Key_Home)
    set_batch_count(queue.batch_spin, 3)
    assert queue.batch_spin.value() == 3
    texts = shown_texts(window, shown)
    window.view.setFocus()
    key(window.view, Qt.Key.Key_Return, CTRL)
    assert queue.queue_label.text() == "Queue: 3"
    qtbot.waitUntil(lambda: len(texts) == 3 and queue.length == 0, timeout=5000)
    assert texts == ["5", "6", "7"]
    assert doc.graph.nodes[seed].inputs["seed"] == 8
    assert queue.queue_label.text() == "Queue: 0"


def test_the_count_can_change_while_a_batch_runs(window, qtbot):
    queue = panels.of(window).queue
    _slow, shown = slow_graph(window, 40)
    set_batch_count(queue.batch_spin, 4)
    texts = shown_texts(window, shown)
    window.view.setFocus()
    key(window.view, Qt.Key.Key_Return, CTRL)
    assert queue.length == 4 and window.runs.in_flight == 1
    set_batch_count(queue.batch_spin, 2)  # while the first run goes: only one more waits now
    assert queue.pending == 1 and queue.queue_label.text() == "Queue: 2"
    qtbot.waitUntil(lambda: queue.length == 0, timeout=5000)
    assert len(texts) == 2


def test_escape_cancels_the_run_and_drops_the_runs_waiting(window, qtbot):
    queue = panels.of(window).queue
    slow, _shown = slow_graph(window, 300)
    set_batch_count(queue.batch_spin, 5)
    window.view.setFocus()
    key(window.view, Qt.Key.Key_Return, CTRL)
    qtbot.waitUntil(lambda: window.scene.nodes[slow].run.status == "running", timeout=3000)
    key(window.view, Qt.Key.Key_Escape)
    assert queue.pending == 0
    qtbot.waitUntil(lambda: queue.length == 0, timeout=3000)
    assert not window.runs.busy


def test_progress_with_time_left_on_the_node_and_in_the_status_bar(window, qtbot):
    queue = panels.of(window).queue
    slow, shown = slow_graph(window, 60)
    click(window.view, header_pos(window, shown))
    key(window.view, Qt.Key.Key_Return, CTRL)
    item = window.scene.nodes[slow]
    qtbot.waitUntil(lambda: queue.progress.isVisible() and "left" in queue.progress.format(), timeout=3000)
    assert 0 < queue.progress.value() < 1000
    badge = item.badge(item.node)
    assert "%" in badge and " · " in badge and badge.endswith(" s"), badge
    qtbot.waitUntil(lambda: queue.length == 0, timeout=5000)
    assert not queue.progress.isVisible()
    assert item.badge(item.node).endswith(" s") and "%" not in item.badge(item.node)  # its run time now
