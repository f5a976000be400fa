"""The Monitor's data layer without a screen: decimation keeps spikes, buffers stay bounded, zoom and pan."""

from __future__ import annotations

from tui.series import LIVE_CAP, MetricBuffer, StepRate, ViewWindow, decimate, points_from_records


def test_decimation_keeps_a_single_spike_and_the_ends() -> None:
    points: list[tuple[int, float, float | None]] = [(step, 1.0, None) for step in range(1, 100_001)]
    points[54_321] = (54_322, 99.0, None)
    buckets = decimate(points, 200)
    assert len(buckets) <= 200
    assert max(b.high for b in buckets) == 99.0
    assert buckets[0].first_step == 1
    assert buckets[-1].last_step == 100_000
    assert sum(b.count for b in buckets) == 100_000


def test_later_record_of_a_step_wins_and_nan_is_left_out() -> None:
    records = [{"step": 1, "loss": 2.0}, {"step": 2, "loss": float("nan")}, {"step": 1, "loss": 1.5}]
    points = points_from_records(records, "loss")
    assert [step for step, _, _ in points] == [1, 2]
    assert points[0] == (1, 1.5, None)
    assert [b.last for b in decimate(points, 10)] == [1.5]  # NaN is never plotted


def test_live_buffer_stays_bounded_and_keeps_every_spike() -> None:
    buffer = MetricBuffer("grad_norm")
    for step in range(1, 50_001):
        buffer.append(step, 30.0 if step == 7 else 1.0)
    assert len(buffer.live) <= LIVE_CAP
    assert buffer.first_step == 1
    assert buffer.last_step == 50_000
    view = buffer.visible(1, 50_000, 120)
    assert len(view) <= 120
    assert max(b.high for b in view) == 30.0


def test_zoom_keeps_the_newest_step_and_pan_leaves_live_mode() -> None:
    window = ViewWindow()
    window.zoom_in(0, 1000)
    assert window.bounds(0, 1000) == (500, 1000)
    assert window.bounds(0, 1200) == (700, 1200)  # live: new points stay in view
    window.pan(-1, 0, 1200)
    assert not window.live
    assert window.bounds(0, 1200) == (575, 1075)
    window.pan(1, 0, 1200)
    window.pan(1, 0, 1200)
    assert window.live
    window.zoom_out(0, 1200)
    window.zoom_out(0, 1200)
    assert window.span is None
    assert window.bounds(0, 1200) == (0, 1200)


def test_step_rate() -> None:
    rate = StepRate()
    for step in range(10):
        rate.add(step * 10, 100.0 + step)
    assert rate.per_second == 10.0
