"""The braille plotting core of the Monitor's charts (exact dots, clipping, breaks, spikes, colours, ticks),
and MetricChart painting from its cached layout."""

from __future__ import annotations

import math

import pytest
from rich.color import Color as RichColor
from textual.app import App, ComposeResult

from tui.series import MetricBuffer, decimate
from tui.widgets.braille_canvas import (
    BrailleCanvas,
    ChartStyle,
    PlotLine,
    chart_strips,
    nice_ticks,
    tick_labels,
    x_axis,
    y_axis,
)
from tui.widgets.metric_chart import ChartStrips, ChartView, MetricChart, Trace

RED, GREEN, GREY = (255, 0, 0), (0, 255, 0), (90, 90, 90)
LOOK = ChartStyle(background=(30, 30, 30), axis=(150, 150, 150))


def canvas_2x1() -> BrailleCanvas:
    """2 x 1 cells = 4 x 4 dots, one dot per unit of data from 0 to 3 on both axes."""
    return BrailleCanvas(2, 1, (0.0, 3.0), (0.0, 3.0))


def lit(canvas: BrailleCanvas) -> set[tuple[int, int]]:
    """The (dot column, dot row) of every dot set, read back from the braille characters."""
    bits = {(0, 0): 0x01, (0, 1): 0x02, (0, 2): 0x04, (0, 3): 0x40}  # braille's dots 1, 2, 3, 7
    bits |= {(1, 0): 0x08, (1, 1): 0x10, (1, 2): 0x20, (1, 3): 0x80}  # and 4, 5, 6, 8
    dots = set()
    for row, line in enumerate(canvas.text()):
        for cell, char in enumerate(line):
            value = 0 if char == " " else ord(char) - 0x2800
            dots |= {(2 * cell + c, 4 * row + r) for (c, r), bit in bits.items() if value & bit}
    return dots


def test_a_rising_diagonal_is_one_dot_per_column() -> None:
    canvas = canvas_2x1()
    canvas.line([0, 1, 2, 3], [0, 1, 2, 3], RED)
    assert canvas.text() == ["⡠⠊"]  # U+2860 (dots 6, 7), U+280A (dots 2, 4)
    assert canvas.dots == [[0x60, 0x0A]]
    assert lit(canvas) == {(0, 3), (1, 2), (2, 1), (3, 0)}
    falling = canvas_2x1()
    falling.line([0, 3], [3, 0], RED)  # two points only: the line between them is drawn
    assert lit(falling) == {(0, 0), (1, 1), (2, 2), (3, 3)}
    assert falling.text() == ["⠑⢄"]


def test_a_line_drawn_right_to_left_sets_the_same_dots() -> None:
    forward, backward = canvas_2x1(), canvas_2x1()
    forward.line([0, 3], [0, 2], RED)
    backward.line([3, 0], [2, 0], RED)
    assert forward.dots == backward.dots
    flat = canvas_2x1()
    flat.line([0, 3], [1, 1], RED)
    assert lit(flat) == {(c, 2) for c in range(4)}  # y = 1 of 0..3 is dot row 2 (row 0 at the top)


def test_lines_are_clipped_to_the_plot_area() -> None:
    canvas = canvas_2x1()
    canvas.line([-3, 6], [-3, 6], RED)  # the diagonal, continued far past both corners
    assert lit(canvas) == {(0, 3), (1, 2), (2, 1), (3, 0)}
    above = canvas_2x1()
    above.line([0, 3], [10, 20], RED)  # wholly outside: nothing, and no error
    assert above.text() == ["  "]
    through = canvas_2x1()
    through.line([1, 1], [-100, 100], RED)  # a vertical line crossing the whole plot
    assert lit(through) == {(1, r) for r in range(4)}


def test_nan_and_inf_break_the_line() -> None:
    canvas = BrailleCanvas(4, 1, (0.0, 7.0), (0.0, 3.0))
    canvas.line([0, 1, 2, 3, 4, 5, 6, 7], [0, 0, math.nan, 3, 3, math.inf, 0, 0], RED)
    dots = lit(canvas)
    assert dots == {(0, 3), (1, 3), (3, 0), (4, 0), (6, 3), (7, 3)}  # three pieces, nothing across the gaps
    lone = BrailleCanvas(4, 1, (0.0, 7.0), (0.0, 3.0))
    lone.line([0, 1, 2], [math.nan, 3, math.nan], RED)  # a point with no neighbour is still a dot
    assert lit(lone) == {(1, 0)}


@pytest.mark.parametrize("cells", [1, 2, 3, 7, 25, 60, 150])
def test_a_one_bucket_spike_is_a_full_column_at_any_width(cells: int) -> None:
    points = 300
    ys = [1.0] * points
    ys[200] = 50.0
    canvas = BrailleCanvas(cells, 6, (0.0, points - 1.0), (0.0, 50.0))
    canvas.line(list(range(points)), ys, RED)
    dots = lit(canvas)
    spike = round(200 * canvas.max_x / (points - 1))
    base = round(canvas.dot_y(1.0))
    near = {r for c, r in dots if abs(c - spike) <= 1}
    assert (spike, 0) in dots  # the top of the spike, in its own column
    assert set(range(0, base + 1)) <= near  # and every row down to the baseline, next to it
    if cells * 2 < points:  # several buckets per dot column: the spike's column alone holds it all
        assert {r for c, r in dots if c == spike} >= set(range(0, base + 1))


def test_colours_last_writer_wins_so_lines_are_drawn_back_to_front() -> None:
    canvas = BrailleCanvas(4, 1, (0.0, 7.0), (0.0, 3.0))
    canvas.line([0, 7], [1, 1], GREY)
    canvas.line([4, 7], [1, 1], RED)  # over the right half
    assert canvas.palette == [GREY, RED]
    assert canvas.colors == [[1, 1, 2, 2]]
    styles = [LOOK.style(c) for c in canvas.palette]
    segments = canvas.row_segments(0, styles, LOOK.style())
    assert [(s.text, s.style.color.triplet if s.style and s.style.color else None) for s in segments] == [
        ("⠤⠤", RichColor.from_rgb(*GREY).triplet),
        ("⠤⠤", RichColor.from_rgb(*RED).triplet),
    ]
    assert all(s.style is not None and s.style.bgcolor == RichColor.from_rgb(30, 30, 30) for s in segments)


def test_nice_ticks_and_their_labels() -> None:
    ticks, step = nice_ticks(-0.3, 5.7, 6)
    assert (ticks, step) == ([0.0, 1.0, 2.0, 3.0, 4.0, 5.0], 1.0)
    assert tick_labels(ticks, step) == ["0", "1", "2", "3", "4", "5"]
    ticks, step = nice_ticks(0.3, 0.4, 4)
    assert step == pytest.approx(0.025)
    assert tick_labels(ticks, step) == ["0.300", "0.325", "0.350", "0.375", "0.400"]
    ticks, step = nice_ticks(0.0, 1_000_000.0, 5)
    assert tick_labels(ticks, step) == ["0", "2e+05", "4e+05", "6e+05", "8e+05", "1e+06"]
    ticks, step = nice_ticks(1000.0, 1400.0, 2)
    assert tick_labels(ticks, step) == ["1000", "1200", "1400"]
    assert tick_labels(*nice_ticks(4.75e-5, 5.25e-5, 5)) == ["4.8e-05", "4.9e-05", "5e-05", "5.1e-05", "5.2e-05"]
    assert tick_labels(*nice_ticks(1e4, 2e4, 1)) == ["10000", "20000"]
    assert tick_labels(*nice_ticks(2e5, 4e5, 1)) == ["2e+05", "4e+05"]
    assert nice_ticks(2.0, 2.0, 5) == ([2.0], 0.0)  # no span: the one value
    assert nice_ticks(math.nan, 1.0, 5) == ([], 0.0)


def test_axes_place_labels_by_value() -> None:
    # 8 rows = 32 dot rows from 7 (top) to 0 (bottom): about one label every 2 rows, each on its value's row.
    assert y_axis(8, (0.0, 7.0)) == {1: "6", 3: "4", 5: "2", 7: "0"}
    assert y_axis(8, (0.0, 1.0)) == {0: "1.00", 2: "0.75", 4: "0.50", 5: "0.25", 7: "0"}
    assert y_axis(2, (0.0, 1.0)) == {0: "1", 1: "0"}  # one label a row at most
    line = x_axis(41, (0.0, 1000.0))
    assert line.split() == ["0", "250", "500", "750", "1000"]
    assert line.index("500") == 20 - 1  # centred on its column
    assert line.endswith("1000")  # kept inside the plot
    assert x_axis(41, (0.0, 300.0), "s").split() == ["0", "100", "200", "300", "s"]  # the unit after the last
    assert x_axis(4, (0.0, 1e6)).strip() in {"0", ""}  # no label overlaps another or the edge


def test_a_whole_chart_has_ticks_lines_and_its_size() -> None:
    strips = chart_strips(30, 6, [PlotLine([0, 100], [0, 1], RED)], ((0.0, 100.0), (0.0, 1.0)), LOOK, "")
    assert len(strips) == 6
    assert all(strip.cell_length == 30 for strip in strips)
    rows = ["".join(segment.text for segment in strip) for strip in strips]
    assert [row[:5] for row in rows] == [" 1.0┤", "    │", " 0.5┤", "    │", "   0┤", "    └"]
    assert rows[-1].startswith("    └0")
    assert rows[-1].rstrip().endswith("100")
    assert rows[4][5] != " "  # the line from the bottom left...
    assert rows[0][-1] != " "  # ...to the top right
    inked = {s.style.color for strip in strips for s in strip if s.style and any(c >= "\u2800" for c in s.text)}
    assert inked == {RichColor.from_rgb(*RED)}  # braille in the line's colour only; axes and labels apart


def test_an_empty_chart_is_blank_at_its_size() -> None:
    strips = chart_strips(12, 3, [], None, LOOK)
    assert [strip.cell_length for strip in strips] == [12, 12, 12]
    assert all("".join(s.text for s in strip) == " " * 12 for strip in strips)
    assert chart_strips(0, 0, [], None, LOOK) == []
    empty = BrailleCanvas(3, 2, (0.0, 1.0), (0.0, 1.0))
    assert empty.text() == ["   ", "   "]
    assert [s.text for s in empty.row_segments(0, [], LOOK.style())] == ["   "]
    zero = BrailleCanvas(0, 0, (0.0, 1.0), (0.0, 1.0))
    zero.line([0, 1], [0, 1], RED)  # nothing to draw on: no error
    assert zero.text() == []


class OneChart(App[None]):
    """A MetricChart alone on a screen."""

    def compose(self) -> ComposeResult:
        yield MetricChart(id="chart")


def spiky_buffer() -> MetricBuffer:
    """600 steps of grad_norm near 1, a spike of 50 at step 300."""
    buffer = MetricBuffer("grad_norm")
    buffer.set_history(decimate([(s, 50.0 if s == 300 else 1.0, 1000.0 + s) for s in range(1, 601)], 4000))
    return buffer


def painted(visual: object) -> list[str]:
    """The text of what ``MetricChart.render`` returned."""
    assert isinstance(visual, ChartStrips)
    return ["".join(segment.text for segment in strip) for strip in visual.strips]


async def test_a_chart_paints_its_cached_layout_and_lays_out_again_only_on_resize() -> None:
    app = OneChart()
    async with app.run_test(size=(60, 14)) as pilot:
        chart = app.query_one(MetricChart)
        buffer = spiky_buffer()
        chart.show("grad_norm", [Trace("r", buffer, (200, 80, 80), 1001.0)])
        view = ChartView((1, 600))
        assert chart.redraw(view)
        assert not chart.redraw(view)  # nothing moved: no work
        first = chart.render()
        assert chart.render() is first  # painting again builds nothing
        rows = painted(first)
        assert len(rows) == chart.size.height
        assert {len(row) for row in rows} == {chart.size.width}
        assert rows[0].lstrip().startswith("50┤")  # the y-axis reaches the spike...
        assert any(c >= "\u2800" for c in rows[0][4:])  # ...and the spike reaches the top row
        assert rows[-1].split()[-1] == "600"
        assert chart.border_subtitle == "1 @ 600"
        buffer.append(601, 2.0, 1601.0)
        assert chart.redraw(ChartView((1, 601)))
        assert chart.render() is not first
        await pilot.resize_terminal(90, 20)
        await pilot.pause()
        resized = chart.render()
        assert len(painted(resized)) == chart.size.height
        assert {len(row) for row in painted(resized)} == {chart.size.width}
        assert chart.size.width > 60
