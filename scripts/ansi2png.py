#!/usr/bin/env python3
"""Render a terminal screen captured with `tmux capture-pane -e -p` to a PNG.

    scripts/ansi2png.py INPUT.ansi OUTPUT.png [--cols N] [--rows N]
                        [--font-size N] [--title TEXT] [--svg OUTPUT.svg]

INPUT may be `-` for standard input. The input is the real screen of a real
program: this script only turns cells into pixels, it never invents content.

No terminal rendering of our own: rich parses the ANSI (SGR colours and
attributes, 256 colours, truecolor; other escape sequences are dropped) and
exports the screen as an SVG, one text run per styled span placed at its cell
column; librsvg's `rsvg-convert` draws that SVG with the system's fonts through
pango, so glyphs DejaVu Sans Mono lacks (the demo's CJK names) fall back to
another installed font (cairosvg, the other maintained SVG renderer, draws them
as empty boxes: it has no font fallback).

Needs `rich` (PyPI; scripts/screenshots.sh makes a venv with it under target/)
and Debian's `librsvg2-bin`, `fonts-dejavu-core` (and `fonts-wqy-microhei`
for CJK).
"""

import argparse
import io
import re
import shutil
import subprocess
import sys

from rich.console import Console
from rich.terminal_theme import TerminalTheme
from rich.text import Text

# The palette of a dark terminal (xterm's 16 colours, softened like most themes).
THEME = TerminalTheme(
    (0x1D, 0x1F, 0x21),
    (0xD0, 0xD0, 0xD0),
    [
        (0x1D, 0x1F, 0x21), (0xCC, 0x66, 0x66), (0xB5, 0xBD, 0x68), (0xF0, 0xC6, 0x74),
        (0x81, 0xA2, 0xBE), (0xB2, 0x94, 0xBB), (0x8A, 0xBE, 0xB7), (0xC5, 0xC8, 0xC6),
    ],
    [
        (0x66, 0x66, 0x66), (0xD5, 0x4E, 0x53), (0xB9, 0xCA, 0x4A), (0xE7, 0xC5, 0x47),
        (0x7A, 0xA6, 0xDA), (0xC3, 0x97, 0xD8), (0x70, 0xC0, 0xB1), (0xEA, 0xEA, 0xEA),
    ],
)

# What rich does not draw and a terminal never shows: tmux's own OSC/DCS strings and
# charset selections (rich's decoder handles CSI and drops the rest, but leaves the
# payload of a string sequence in the text).
STRING_SEQ = re.compile(r"\x1b[P\]_^X][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[()][0-9A-Za-z]")


def render(ansi: str, cols: int, rows: int, title: str) -> str:
    lines = STRING_SEQ.sub("", ansi).replace("\r", "").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = (lines + [""] * rows)[:rows]
    console = Console(
        record=True,
        width=cols,
        height=rows,
        file=io.StringIO(),
        force_terminal=True,
        color_system="truecolor",
        legacy_windows=False,
        soft_wrap=False,
    )
    # Decode the whole screen at once: tmux carries attributes across lines.
    text = Text.from_ansi("\n".join(lines), no_wrap=True, overflow="crop")
    console.print(text, crop=True, end="")
    svg = console.export_svg(title=title, theme=THEME, font_aspect_ratio=0.602)
    # rich's template loads Fira Code from the web; braid's screenshots use the local
    # monospace font and no network.
    svg = re.sub(r"@font-face\s*\{[^}]*\}", "", svg)
    svg = svg.replace('font-family: Fira Code, monospace', 'font-family: DejaVu Sans Mono, monospace')
    # Spaces are cells: librsvg collapses a span's leading space (the gap after a bold key
    # in the hint line, a message's indent) unless told to keep them.
    svg = svg.replace("<svg ", '<svg xml:space="preserve" ', 1)
    return svg


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input", help="capture-pane -e output, or - for stdin")
    ap.add_argument("output", help="PNG to write")
    ap.add_argument("--cols", type=int, help="screen width in cells (default: widest line)")
    ap.add_argument("--rows", type=int, help="screen height in cells (default: number of lines)")
    ap.add_argument("--font-size", type=int, default=16, help="pixels per cell row (default 16)")
    ap.add_argument("--title", default="", help="the window title above the screen")
    ap.add_argument("--svg", help="also keep the SVG here")
    args = ap.parse_args()

    data = sys.stdin.read() if args.input == "-" else open(args.input, encoding="utf-8", errors="replace").read()
    plain = [Text.from_ansi(l).cell_len for l in STRING_SEQ.sub("", data).split("\n")]
    cols = args.cols or max(plain + [1])
    rows = args.rows or max(1, len(data.rstrip("\n").split("\n")))
    svg = render(data, cols, rows, args.title)
    if args.svg:
        with open(args.svg, "w", encoding="utf-8") as f:
            f.write(svg)
    rsvg = shutil.which("rsvg-convert")
    if not rsvg:
        sys.exit("ansi2png: rsvg-convert not found: apt-get install librsvg2-bin")
    # rich lays its text out at 20 px (rows of 24.4 px): zoom to the asked size.
    zoom = args.font_size / 20 * 1.25
    subprocess.run(
        [rsvg, "--zoom", f"{zoom:.4f}", "--format", "png", "--output", args.output],
        input=svg.encode("utf-8"),
        check=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
