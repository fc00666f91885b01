"""The glyphs charts and sparklines are drawn with: Unicode, or what a console font has.

A Raspberry Pi's own screen is the Linux console (``TERM=linux``), whose font holds a few
hundred glyphs (about those of code page 437): no braille, none of the eighth blocks
``▁▂▃▅▆▇``, no rounded or heavy box corners. There pwtop draws with ASCII marks instead,
as htop's ASCII mode and btop's TTY mode do: detected from ``TERM=linux``, forced with
``--ascii`` or ``[ui] ascii = "on"``, refused with ``[ui] ascii = "off"``.

No Textual here: the sparkline text and the chart cells are plain strings, tested alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

#: Braille dot bits by (column in the cell, row in the cell from the top).
_BRAILLE = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))


@dataclass(frozen=True)
class Glyphs:
    """One glyph set: a sparkline's levels, a chart's dots per cell and its marks."""

    name: str
    braille: bool
    bars: str                        # sparkline levels, lowest first
    chart_dots: tuple[int, int]      # dots per cell: columns, rows
    axis_v: str
    axis_tick: str
    axis_corner: str
    marks: tuple[str, ...] = ()      # ASCII: per series, the marks for top/middle/bottom/more

    def dot_bit(self, in_x: int, in_y: int) -> int:
        """The bit of the dot at (column, row from the top) inside one cell."""
        return _BRAILLE[in_x][in_y] if self.braille else 1 << in_y

    def dot_char(self, bits: int, series: int) -> str:
        """The glyph of a cell whose dots ``bits`` are set, drawn for ``series``."""
        if self.braille:
            return chr(0x2800 + bits)
        marks = self.marks[series % len(self.marks)]
        return {1: marks[0], 2: marks[1], 4: marks[2]}.get(bits, marks[3])

    def legend(self, series: int) -> str:
        """Two cells that stand for a series in a chart's title."""
        if self.braille:
            return "──"
        return self.marks[series % len(self.marks)][1] * 2


UNICODE = Glyphs("unicode", True, "▁▂▃▄▅▆▇█", (2, 4), "│", "┤", "└")
#: ASCII only (every console font has these). A chart cell holds one of three heights:
#: top ', middle -, bottom . (the second series: ` + ,); a cell the line crosses
#: vertically is | (the second series: !).
ASCII = Glyphs("ascii", False, "_.-=+*%#", (1, 3), "|", "+", "+",
               marks=("'-.|", "`+,!"))

#: Terminals whose font is a console font: the Linux virtual console (a Pi's own screen).
CONSOLE_TERMS = frozenset({"linux"})


def glyphs_for(ascii_mode: bool) -> Glyphs:
    return ASCII if ascii_mode else UNICODE


def ascii_wanted(setting: str, environ: Mapping[str, str]) -> bool:
    """Whether to draw with ASCII: ``on``/``off`` decide; ``auto`` (the default) asks the
    terminal: the Linux console (``TERM=linux``) has no braille or eighth blocks."""
    if setting == "on":
        return True
    if setting == "off":
        return False
    return environ.get("TERM", "") in CONSOLE_TERMS


def _console_fallbacks() -> dict[int, str]:
    """What the terminal gets instead of glyphs a console font lacks, one cell for one
    cell: the last net under ASCII mode, for text pwtop does not draw itself (Textual's
    and Rich's ellipsis, eighth blocks, rounded and heavy box pieces, braille)."""
    table: dict[str, str] = {"…": ".", "━": "-", "╸": "-", "╺": "-", "┃": "|", "▔": "-",
                             "╭": "+", "╮": "+", "╰": "+", "╯": "+", "▏": "|", "▕": "|",
                             "●": "*", "○": "o", "✓": "v", "✗": "x", "⏸": "=", "→": ">",
                             "←": "<", "↓": "v", "↑": "^"}
    table.update(dict.fromkeys("▁▂▃", "_"))
    table.update(dict.fromkeys("▅▆▇", "#"))
    table.update(dict.fromkeys("▉▊▋▍▎", "|"))
    out = {ord(k): v for k, v in table.items()}
    out.update({code: ":" for code in range(0x2801, 0x2900)})
    out[0x2800] = " "
    return out


#: str.translate table: applied to what is written to a console-font terminal.
CONSOLE_FALLBACKS = _console_fallbacks()
