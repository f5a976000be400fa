"""The Monitor's data layer without a screen: decimation keeps spikes, buffers stay bounded, zoom and pan,
smoothing, the metric pages (order, filter, layout) and the exports' no-overwrite rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui.chart_export import CSV_COLUMNS, ExportRefused, csv_text, export_name, write_new
from tui.metric_pages import MetricPages, fit_layout, matches, order_metrics
from tui.series import LIVE_CAP, Bucket, MetricBuffer, StepRate, ViewWindow, decimate, ema, points_from_records


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


def test_buckets_keep_the_wall_time_of_their_ends() -> None:
    buckets = decimate([(s, 1.0, 100.0 + s) for s in range(1, 11)] + [(11, 2.0, None)], 3)
    assert [(b.first_ts, b.last_ts) for b in buckets] == [(101.0, 104.0), (105.0, 108.0), (109.0, None)]
    buffer = MetricBuffer("loss")
    buffer.append(1, 1.0, 50.0)
    assert (buffer.first_ts, buffer.live[0].last_ts) == (50.0, 50.0)
    points = points_from_records([{"step": 1, "ts": 7.5, "loss": 1.0}, {"step": 2, "ts": "x", "loss": 2.0}], "loss")
    assert points == [(1, 1.0, 7.5), (2, 2.0, None)]


def test_ema_is_debiased_and_zero_weight_is_the_raw_line() -> None:
    values = [1.0, 3.0, 1.0, 3.0]
    assert ema(values, 0.0) == values
    smoothed = ema(values, 0.5)
    assert smoothed[0] == 1.0  # not pulled towards 0 at the start
    assert smoothed[1] == pytest.approx((0.25 * 1 + 0.5 * 3) / 0.75)
    assert max(smoothed) - min(smoothed) < 2.0


TRL_NAMES = {"loss", "grad_norm", "learning_rate", "reward", "frac_reward_zero_std", "completions/mean_length",
             "rewards/chosen", "eval/humaneval", "eval/mbpp", "eval_runtime", "epoch"}  # fmt: skip


def test_metric_order_overview_then_train_then_eval_then_bookkeeping() -> None:
    assert order_metrics(sorted(TRL_NAMES)) == [
        "loss", "grad_norm", "learning_rate", "eval/humaneval",  # no eval_loss: the first eval task
        "completions/mean_length", "frac_reward_zero_std", "reward", "rewards/chosen",
        "eval/mbpp",
        "epoch", "eval_runtime",
    ]  # fmt: skip
    assert order_metrics(["eval_loss", "eval/loss", "loss"]) == ["loss", "eval_loss", "eval/loss"]


def test_filter_is_a_glob_or_a_substring() -> None:
    assert matches("eval/humaneval", "eval/*")
    assert not matches("eval_loss", "eval/*")
    assert matches("rewards/chosen", "rewards/*")
    assert not matches("reward", "rewards/*")
    assert matches("frac_reward_zero_std", "REWARD")  # a substring, any case
    assert matches("completions/mean_length", "completions/")
    assert matches("anything", "  ")
    assert matches("eval_loss", "eval*")
    assert matches("eval/mbpp", "eval*")


def test_pages_wrap_follow_the_filter_and_keep_their_place_on_resize() -> None:
    pages = MetricPages()
    pages.set_names(TRL_NAMES)
    assert pages.count == 3
    assert pages.current() == ["loss", "grad_norm", "learning_rate", "eval/humaneval"]
    pages.turn(-1)
    assert pages.current() == ["eval/mbpp", "epoch", "eval_runtime"]
    pages.resize(2)  # the page held items 8-11: now the page of item 8
    assert pages.current() == ["eval/mbpp", "epoch"]
    pages.set_filter("reward")
    assert (pages.page, pages.shown) == (0, ["frac_reward_zero_std", "reward", "rewards/chosen"])
    assert pages.add_names({"rewards/rejected", "loss"})
    assert not pages.add_names({"loss"})
    assert "rewards/rejected" in pages.shown
    pages.set_filter("nothing-matches")
    assert (pages.count, pages.current()) == (1, [])


def test_small_terminals_get_fewer_charts() -> None:
    assert fit_layout(2, 2, 200, 37) == (2, 2)
    assert fit_layout(2, 2, 80, 11) == (1, 2)
    assert fit_layout(3, 4, 60, 5) == (1, 1)


def test_export_never_overwrites_and_leaves_no_temporary(tmp_path: Path) -> None:
    text = csv_text("loss", [("a", [Bucket(1, 2, 0.5, 1.5, 1.0, 2, 10.0, None)])])
    assert text.splitlines() == [",".join(CSV_COLUMNS), "a,loss,1,2,10.0,,0.5,1.5,1.0,2"]
    path = tmp_path / "exports" / export_name("bd6.8d2", "eval/humaneval", 0.0, "csv")
    assert path.name.startswith("bd6.8d2-eval_humaneval-")
    assert path.name.endswith(".csv")
    write_new(path, text)
    with pytest.raises(ExportRefused, match="exists already: not overwritten"):
        write_new(path, "other")
    assert path.read_text(encoding="utf-8") == text
    assert [p.name for p in path.parent.iterdir()] == [path.name]
