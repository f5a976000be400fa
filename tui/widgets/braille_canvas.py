"""A small braille plotting core for the Monitor's charts: lines on a dot grid, tick labels, Textual strips.

A canvas of W x H terminal cells holds 2W x 4H dots, one braille character (U+2800 + dot bits) per
cell. Each cell has one colour, the last line drawn through it wins, so lines are drawn back to front.
Lines join consecutive points column by column in dot space: each dot column gets the vertical run
the line covers there (so a one-bucket spike is drawn to its full height at any width, a column of
dots where buckets outnumber columns), clipped to the plot area; a NaN or infinite point breaks the
line. The dots are one list of ints per row: drawing makes no object per dot, and a row becomes a
few ``Segment``s (one per run of cells of one colour).
``chart_strips`` lays a whole chart out: y tick labels on the left, x tick labels along the bottom.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from math import ceil  # a local name: _run calls it for every column it sets

from rich.color import Color as RichColor
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

RGB = tuple[int, int, int]
Limits = tuple[float, float]
Segment2 = tuple[float, float, float, float]  # (ax, ay, bx, by)

# The bit of the dot at (column in the cell, row in the cell), as braille numbers its eight dots.
DOT_BITS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
# RUN_BITS[column][top][bottom]: the bits of rows top..bottom of one dot column of a cell.
RUN_BITS = tuple(
    tuple(tuple(sum(DOT_BITS[col][row] for row in range(top, bottom + 1)) for bottom in range(4)) for top in range(4))
    for col in range(2)
)
GLYPHS = tuple(" " if bits == 0 else chr(0x2800 + bits) for bits in range(256))  # a blank cell is a space
NICE_STEPS = (1.0, 2.0, 2.5, 5.0, 10.0)
Y_TICK_ROWS = 2  # about one y label every this many rows
X_TICK_CELLS = 10  # about one x label every this many cells


def _limits(limits: Limits) -> Limits:
    """``limits`` widened to a unit span around ``low`` when they have none (one point, a flat line)."""
    low, high = limits
    return (low, high) if high > low else (low - 0.5, low + 0.5)


class BrailleCanvas:
    """``width`` x ``height`` cells of braille dots, data mapped onto them by ``x_limits`` and ``y_limits``."""

    def __init__(self, width: int, height: int, x_limits: Limits, y_limits: Limits) -> None:
        self.width, self.height = max(0, width), max(0, height)
        self.dots = [[0] * self.width for _ in range(self.height)]
        self.colors = [[0] * self.width for _ in range(self.height)]  # 0: none, else 1 + index in palette
        self.palette: list[RGB] = []
        self.max_x, self.max_y = 2 * self.width - 1, 4 * self.height - 1  # the last dot column and row
        (x0, x1), (y0, y1) = _limits(x_limits), _limits(y_limits)
        self._x0, self._y1 = x0, y1
        self._sx, self._sy = self.max_x / (x1 - x0), self.max_y / (y1 - y0)

    def dot_x(self, x: float) -> float:
        """The dot column (fractional) of data ``x``: 0 at the low limit, the last column at the high one."""
        return (x - self._x0) * self._sx

    def dot_y(self, y: float) -> float:
        """The dot row (fractional) of data ``y``: 0 (the top) at the high limit."""
        return (self._y1 - y) * self._sy

    def line(self, xs: Sequence[float], ys: Sequence[float], color: RGB) -> None:
        """Join consecutive (x, y) points in ``color``; a lone point between breaks is a dot."""
        if not self.width or not self.height:
            return
        if color not in self.palette:
            self.palette.append(color)
        ink = self.palette.index(color) + 1
        x0, y1, sx, sy, finite = self._x0, self._y1, self._sx, self._sy, math.isfinite
        hi_x, hi_y = self.max_x + 0.5, self.max_y + 0.5
        # The dot column being gathered (-1: none) and the rows it covers so far: consecutive segments
        # in one column (dense data) make one vertical run, set once when the line leaves the column.
        column, top, bottom = -1, 0.0, 0.0
        ax = ay = 0.0
        started = was_inside = False  # a point before this one / whether it was inside the canvas
        for x, y in zip(xs, ys, strict=True):
            px, py = (x - x0) * sx, (y1 - y) * sy
            if not (finite(px) and finite(py)):
                if column >= 0:
                    self._run(column, top, bottom, ink)
                column, started = -1, False
                continue
            inside = -0.5 <= px <= hi_x and -0.5 <= py <= hi_y
            if not started:
                if inside:
                    column, top, bottom = int(px + 0.5), py, py
                started = True
            elif inside and was_inside and int(px + 0.5) == column:
                if py < top:
                    top = py
                elif py > bottom:
                    bottom = py
            else:
                segment = (ax, ay, px, py) if inside and was_inside else clip(ax, ay, px, py, hi_x, hi_y)
                if segment is not None:
                    column, top, bottom = self._walk(segment, ink, column, top, bottom)
                elif column >= 0:  # wholly outside: the run gathered so far is complete
                    self._run(column, top, bottom, ink)
                    column = -1
            ax, ay, was_inside = px, py, inside
        if column >= 0:
            self._run(column, top, bottom, ink)

    def _walk(self, segment: Segment2, ink: int, column: int, top: float, bottom: float) -> tuple[int, float, float]:
        """Segment a -> b inside the canvas (dot space): each dot column it crosses gets the rows it covers there.

        ``column``, ``top`` and ``bottom`` are the run being gathered; returned: the one left gathering.
        """
        ax, ay, bx, by = segment
        first, last = min(int(ax + 0.5), self.max_x), min(int(bx + 0.5), self.max_x)
        step = 1 if last >= first else -1
        slope = (by - ay) / (bx - ax) if last != first else 0.0
        y = ay
        for here in range(first, last + step, step):
            leave = by if here == last else ay + (here + 0.5 * step - ax) * slope  # y where it leaves `here`
            low, high = (y, leave) if y <= leave else (leave, y)
            if here == column:
                if low < top:
                    top = low
                if high > bottom:
                    bottom = high
            else:
                if column >= 0:
                    self._run(column, top, bottom, ink)
                column, top, bottom = here, low, high
            y = leave
        return column, top, bottom

    def _run(self, column: int, top: float, bottom: float, ink: int) -> None:
        """Set the dots of ``column`` from row ``top`` to ``bottom`` (fractional, inside the canvas), cell by cell.

        Rows whose centre the span covers, rounding its ends inwards (a 45-degree line is one dot per
        column, as Bresenham draws it); a span narrower than that is the one row nearest its middle.
        """
        first, last = int(top + 0.5), ceil(bottom - 0.5)
        if last < first:
            first = last = min(int((top + bottom) / 2 + 0.5), self.max_y)
        cell, masks, dots, colors = column >> 1, RUN_BITS[column & 1], self.dots, self.colors
        for row in range(first >> 2, (last >> 2) + 1):
            base = row << 2
            dots[row][cell] |= masks[first - base if first > base else 0][last - base if last - base < 3 else 3]
            colors[row][cell] = ink

    def row_segments(self, row: int, styles: Sequence[Style], blank: Style) -> list[Segment]:
        """Row ``row`` as segments, one per run of cells of one colour; ``styles[i]`` is palette colour i."""
        dots, colors = self.dots[row], self.colors[row]
        segments: list[Segment] = []
        start, current = 0, colors[0] if self.width and dots[0] else 0
        for cell in range(1, self.width + 1):
            ink = (colors[cell] if dots[cell] else 0) if cell < self.width else -1
            if ink != current:
                text = "".join([GLYPHS[bits] for bits in dots[start:cell]])
                segments.append(Segment(text, styles[current - 1] if current else blank))
                start, current = cell, ink
        return segments

    def text(self) -> list[str]:
        """The dots as plain text, one string per row (tests, debugging)."""
        return ["".join([GLYPHS[bits] for bits in dots]) for dots in self.dots]


def clip(ax: float, ay: float, bx: float, by: float, hi_x: float, hi_y: float) -> Segment2 | None:
    """The part of segment a -> b inside [-0.5, hi_x] x [-0.5, hi_y] (Liang-Barsky), None when none is."""
    dx, dy = bx - ax, by - ay
    t0, t1 = 0.0, 1.0
    for p, q in ((-dx, ax + 0.5), (dx, hi_x - ax), (-dy, ay + 0.5), (dy, hi_y - ay)):
        if p == 0:
            if q < 0:
                return None
            continue
        t = q / p
        if p < 0:
            if t > t1:
                return None
            t0 = max(t0, t)
        else:
            if t < t0:
                return None
            t1 = min(t1, t)
    return ax + t0 * dx, ay + t0 * dy, ax + t1 * dx, ay + t1 * dy


def nice_ticks(low: float, high: float, count: int) -> tuple[list[float], float]:
    """Round values (1, 2, 2.5 or 5 times a power of ten apart) in [low, high], about ``count`` steps; and the step."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return ([low] if math.isfinite(low) else []), 0.0
    raw = (high - low) / max(1, count)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in NICE_STEPS if raw <= m * magnitude * (1 + 1e-9))
    first = math.ceil(low / step - 1e-9)
    ticks = []
    index = first
    while index * step <= high + step * 1e-9:
        value = index * step
        ticks.append(0.0 if abs(value) < step * 1e-6 else value)  # no 1e-17 where 0 is meant
        index += 1
    return ticks, step


def tick_labels(ticks: Sequence[float], step: float) -> list[str]:
    """Short labels: fixed point with the step's decimals (``0.35``, ``1200``), else ``1.2e+03`` style."""
    if not ticks:
        return []
    biggest = max(abs(t) for t in ticks)
    decimals = next((d for d in range(5) if abs(round(step, d) - step) <= step * 1e-6), None) if step else 0
    if decimals is not None and (biggest == 0 or 1e-3 <= biggest < 1e5):
        return [f"{t:.{decimals}f}" if t else "0" for t in ticks]
    labels: list[str] = []
    for precision in range(1, 7):
        labels = [f"{t:.{precision}g}" for t in ticks]
        if len(set(labels)) == len(labels):
            break
    return labels


@dataclass(frozen=True)
class PlotLine:
    """One line of a chart: its points and its colour."""

    xs: Sequence[float]
    ys: Sequence[float]
    color: RGB


@dataclass(frozen=True)
class ChartStyle:
    """The chart's background and the colour of its axis and labels."""

    background: RGB
    axis: RGB

    def style(self, color: RGB | None = None) -> Style:
        """Text in ``color`` (the axis colour when None) on the chart's background."""
        return Style(color=RichColor.from_rgb(*(color or self.axis)), bgcolor=RichColor.from_rgb(*self.background))


def y_axis(rows: int, y_limits: Limits) -> dict[int, str]:
    """The y labels by cell row (top = 0) for a plot ``rows`` high: at most one per row."""
    low, high = _limits(y_limits)
    ticks, step = nice_ticks(low, high, max(1, rows // Y_TICK_ROWS))
    labels: dict[int, str] = {}
    scale = (4 * rows - 1) / (high - low)
    for value, label in zip(ticks, tick_labels(ticks, step), strict=True):
        labels.setdefault(min(rows - 1, max(0, int((high - value) * scale + 0.5) >> 2)), label)
    return labels


def x_axis(width: int, x_limits: Limits, unit: str = "") -> str:
    """The x labels line for a plot ``width`` cells wide, each centred on its column, none overlapping."""
    low, high = _limits(x_limits)
    ticks, step = nice_ticks(low, high, max(1, width // X_TICK_CELLS))
    labels = tick_labels(ticks, step)
    if unit and labels:
        labels[-1] += f" {unit}"
    chars = [" "] * width
    scale, free = (2 * width - 1) / (high - low), 0  # free: the first cell after the last label and a gap
    for value, label in zip(ticks, labels, strict=True):
        centre = int((value - low) * scale + 0.5) >> 1
        start = min(max(0, centre - len(label) // 2), width - len(label))
        if start < free or len(label) > width:
            continue
        chars[start : start + len(label)] = label
        free = start + len(label) + 1
    return "".join(chars)


def chart_strips(
    width: int,
    height: int,
    lines: Sequence[PlotLine],
    limits: tuple[Limits, Limits] | None,
    look: ChartStyle,
    x_unit: str = "",
) -> list[Strip]:
    """A whole chart ``width`` x ``height`` cells: y labels and axis, the lines back to front, x labels."""
    blank = look.style()
    if limits is None or width < 4 or height < 1:
        return [Strip([Segment(" " * max(0, width), blank)], max(0, width)) for _ in range(max(0, height))]
    x_limits, y_limits = limits
    rows = height - 1 if height >= 3 else height  # the bottom row for x labels, when there is room
    y_labels = y_axis(rows, y_limits)
    gutter = 1 + max(len(label) for label in y_labels.values()) if y_labels else 0  # a space off the border
    if width - gutter - 1 < 2:
        y_labels, gutter = {}, 0
    plot_width = width - gutter - 1 if gutter else width
    canvas = BrailleCanvas(plot_width, rows, x_limits, y_limits)
    for line in lines:
        canvas.line(line.xs, line.ys, line.color)
    styles = [look.style(color) for color in canvas.palette]
    strips = []
    for row in range(rows):
        left = [Segment(f"{y_labels.get(row, ''):>{gutter}}{'┤' if row in y_labels else '│'}", blank)] if gutter else []
        strips.append(Strip(left + canvas.row_segments(row, styles, blank), width))
    if rows < height:
        corner = " " * gutter + "└" if gutter else ""
        strips.append(Strip([Segment(corner + x_axis(plot_width, x_limits, x_unit), blank)], width))
    return strips
