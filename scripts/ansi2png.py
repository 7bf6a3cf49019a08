#!/usr/bin/env python3
"""Render a terminal screen captured with `tmux capture-pane -e -p` to a PNG.

    scripts/ansi2png.py INPUT.ansi OUTPUT.png [--cols N] [--rows N]
                        [--font PATH] [--bold-font PATH] [--font-size N]
                        [--title TEXT] [--padding PX] [--theme NAME]
    scripts/ansi2png.py --self-test [OUTPUT.png]

INPUT may be `-` for standard input. The input is the real screen of a real
program: this script only turns cells into pixels, it never invents content.

What it understands:
  * SGR: bold, dim, italic, underline (incl. 4:x and 21), blink (ignored),
    reverse, hidden, strikethrough, overline, default colours 39/49, the 16
    colours 30-37/40-47/90-97/100-107, 256 colours 38;5;n / 48;5;n, truecolor
    38;2;r;g;b (also the colon forms), underline colour 58/59.
  * Attributes carry across lines, as tmux emits them.
  * Wide characters (CJK, emoji) take two cells, combining marks join the
    cell before them (east-asian width / wcwidth rules).
  * Box drawing (U+2500-257F), block elements (U+2580-259F) and braille
    (U+2800-28FF) are drawn as shapes so that lines join without gaps, like
    a real terminal does; everything else is a font glyph.
  * Any other escape sequence (CSI, OSC, DCS, APC, charset selection, ...) is
    skipped. Malformed input never raises.

Fonts: DejaVu Sans Mono (Debian `fonts-dejavu-core`) plus fallbacks for
glyphs it lacks: DejaVu Sans, Noto, Symbola (`fonts-symbola`), WenQuanYi
(`fonts-wqy-microhei`) or Noto CJK for CJK, Noto Color Emoji
(`fonts-noto-color-emoji`) for emoji. A glyph no font has is drawn as a box.

Needs Pillow: `apt-get install python3-pil` (Debian) or `pip install Pillow`.
"""

import argparse
import os
import struct
import sys
import tempfile
import unicodedata

# --------------------------------------------------------------------------
# Pillow: import, or say what to install (and try the system python, which is
# where Debian's python3-pil lands, when we were started by another one).
# --------------------------------------------------------------------------
try:
    from PIL import Image, ImageDraw, ImageFont
except ImportError:  # pragma: no cover - depends on the machine
    _here = os.path.realpath(sys.executable or "")
    for _cand in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if (
            os.path.exists(_cand)
            and os.path.realpath(_cand) != _here
            and not os.environ.get("ANSI2PNG_REEXEC")
        ):
            import subprocess

            if (
                subprocess.call(
                    [_cand, "-c", "import PIL"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                == 0
            ):
                os.environ["ANSI2PNG_REEXEC"] = "1"
                os.execv(_cand, [_cand, os.path.abspath(__file__)] + sys.argv[1:])
    sys.stderr.write(
        "ansi2png: Pillow is not installed for %s.\n"
        "  Debian/Ubuntu: sudo apt-get install -y python3-pil\n"
        "  or:            %s -m pip install Pillow\n"
        % (sys.executable, sys.executable or "python3")
    )
    sys.exit(2)


# --------------------------------------------------------------------------
# Colours
# --------------------------------------------------------------------------
THEMES = {
    # A dark theme close to common terminal defaults (xterm-like layout,
    # legible blues on a dark background).
    "dark": {
        "fg": (204, 204, 204),
        "bg": (24, 24, 27),
        "ansi": [
            (0, 0, 0), (205, 49, 49), (13, 188, 121), (229, 229, 16),
            (36, 114, 200), (188, 63, 188), (17, 168, 205), (229, 229, 229),
            (102, 102, 102), (241, 76, 76), (35, 209, 139), (245, 245, 67),
            (59, 142, 234), (214, 112, 214), (41, 184, 219), (255, 255, 255),
        ],
    },
    # xterm's own defaults, on black.
    "xterm": {
        "fg": (229, 229, 229),
        "bg": (0, 0, 0),
        "ansi": [
            (0, 0, 0), (205, 0, 0), (0, 205, 0), (205, 205, 0),
            (0, 0, 238), (205, 0, 205), (0, 205, 205), (229, 229, 229),
            (127, 127, 127), (255, 0, 0), (0, 255, 0), (255, 255, 0),
            (92, 92, 255), (255, 0, 255), (0, 255, 255), (255, 255, 255),
        ],
    },
}


def xterm256(n, ansi):
    """RGB of colour n of the 256-colour palette."""
    if n < 16:
        return ansi[n]
    if n < 232:
        n -= 16
        levels = (0, 95, 135, 175, 215, 255)
        return (levels[n // 36], levels[(n // 6) % 6], levels[n % 6])
    v = 8 + 10 * (n - 232)
    return (v, v, v)


def blend(a, b, t):
    """a*(1-t) + b*t."""
    return tuple(int(round(x * (1 - t) + y * t)) for x, y in zip(a, b))


# --------------------------------------------------------------------------
# Character widths (wcwidth logic on top of unicodedata)
# --------------------------------------------------------------------------
_ZERO_WIDTH_CATS = ("Mn", "Me", "Cf")


def char_width(ch):
    """Cells a character takes: 0 (joins the previous cell), 1 or 2."""
    cp = ord(ch)
    if cp == 0:
        return 0
    if cp < 32 or 0x7F <= cp < 0xA0:
        return 0
    if cp == 0x00AD:  # soft hyphen shows as a hyphen in terminals
        return 1
    cat = unicodedata.category(ch)
    if cat in _ZERO_WIDTH_CATS:
        return 0
    if 0x1160 <= cp <= 0x11FF:  # Hangul medial vowels / final consonants
        return 0
    if cp == 0x200B:
        return 0
    if unicodedata.east_asian_width(ch) in ("W", "F"):
        return 2
    return 1


# --------------------------------------------------------------------------
# Parsing: capture-pane -e output -> grid of cells
# --------------------------------------------------------------------------
class Style:
    __slots__ = (
        "fg", "bg", "ul_color", "bold", "dim", "italic", "underline",
        "reverse", "hidden", "strike", "overline",
    )

    def __init__(self):
        self.reset()

    def reset(self):
        # colours: None = default, ("i", n) = palette index, ("rgb", (r,g,b))
        self.fg = None
        self.bg = None
        self.ul_color = None
        self.bold = False
        self.dim = False
        self.italic = False
        self.underline = 0  # 0 none, 1 single, 2 double, 3 curly, ...
        self.reverse = False
        self.hidden = False
        self.strike = False
        self.overline = False

    def key(self):
        return tuple(getattr(self, s) for s in self.__slots__)


class Cell:
    __slots__ = ("text", "width", "style")

    def __init__(self, text, width, style):
        self.text = text  # str; "" for the right half of a wide char
        self.width = width  # 1 or 2; 0 for the right half of a wide char
        self.style = style  # tuple from Style.key()


def _ext_colour(nums, i):
    """Parse 5;n or 2;r;g;b starting at nums[i]. Returns (colour|None, next)."""
    if i >= len(nums):
        return None, i
    mode = nums[i]
    if mode == 5:
        if i + 1 < len(nums) and nums[i + 1] is not None:
            return ("i", max(0, min(255, nums[i + 1]))), i + 2
        return None, i + 2
    if mode == 2:
        rgb = nums[i + 1 : i + 4]
        if len(rgb) == 3 and all(v is not None for v in rgb):
            return ("rgb", tuple(max(0, min(255, v)) for v in rgb)), i + 4
        return None, i + 4
    return None, i + 1


def _int(s):
    try:
        return int(s) if s != "" else None
    except ValueError:
        return None


def apply_sgr(style, params):
    """Apply one SGR parameter string (the part between ESC[ and m)."""
    if params == "":
        style.reset()
        return
    groups = params.split(";")
    # Flatten, but keep colon groups together (38:2::r:g:b is self-contained).
    i = 0
    flat = []  # list of (number|None, subparams list|None)
    for g in groups:
        if ":" in g:
            parts = g.split(":")
            flat.append((_int(parts[0]), [_int(p) for p in parts[1:]]))
        else:
            flat.append((_int(g), None))
    nums = [n for n, _ in flat]
    while i < len(flat):
        n, sub = flat[i]
        i += 1
        if n is None:
            n = 0
        if n == 0:
            style.reset()
        elif n == 1:
            style.bold = True
        elif n == 2:
            style.dim = True
        elif n == 3:
            style.italic = True
        elif n == 4:
            if sub:
                style.underline = sub[0] if sub[0] is not None else 1
            else:
                style.underline = 1
        elif n in (5, 6):
            pass  # blink
        elif n == 7:
            style.reverse = True
        elif n == 8:
            style.hidden = True
        elif n == 9:
            style.strike = True
        elif n == 21:
            style.underline = 2
        elif n == 22:
            style.bold = False
            style.dim = False
        elif n == 23:
            style.italic = False
        elif n == 24:
            style.underline = 0
        elif n == 25:
            pass
        elif n == 27:
            style.reverse = False
        elif n == 28:
            style.hidden = False
        elif n == 29:
            style.strike = False
        elif 30 <= n <= 37:
            style.fg = ("i", n - 30)
        elif n in (38, 48, 58):
            if sub is not None:
                col = None
                if sub and sub[0] == 5 and len(sub) >= 2 and sub[1] is not None:
                    col = ("i", max(0, min(255, sub[1])))
                elif sub and sub[0] == 2:
                    rgb = sub[1:]
                    if len(rgb) >= 4:  # colour-space id present (maybe empty)
                        rgb = rgb[1:4]
                    if len(rgb) == 3 and all(v is not None for v in rgb):
                        col = ("rgb", tuple(max(0, min(255, v)) for v in rgb))
            else:
                col, i = _ext_colour(nums, i)
            if col is not None:
                if n == 38:
                    style.fg = col
                elif n == 48:
                    style.bg = col
                else:
                    style.ul_color = col
        elif n == 39:
            style.fg = None
        elif 40 <= n <= 47:
            style.bg = ("i", n - 40)
        elif n == 49:
            style.bg = None
        elif n == 53:
            style.overline = True
        elif n == 55:
            style.overline = False
        elif n == 59:
            style.ul_color = None
        elif 90 <= n <= 97:
            style.fg = ("i", n - 90 + 8)
        elif 100 <= n <= 107:
            style.bg = ("i", n - 100 + 8)
        # anything else: ignored


def parse_ansi(text):
    """Parse captured text into logical lines: lists of Cell (unwrapped)."""
    style = Style()
    lines = [[]]
    line = lines[0]
    n = len(text)
    i = 0
    col = 0  # cursor column in the current logical line

    def put(ch, w):
        nonlocal col, line
        key = style.key()
        # overwrite semantics if the cursor was moved back (\r, \b)
        while len(line) < col:
            line.append(Cell(" ", 1, key))
        cell = Cell(ch, w, key)
        if col < len(line):
            line[col] = cell
        else:
            line.append(cell)
        col += 1
        if w == 2:
            filler = Cell("", 0, key)
            if col < len(line):
                line[col] = filler
            else:
                line.append(filler)
            col += 1

    while i < n:
        ch = text[i]
        cp = ord(ch)
        if ch == "\x1b" or ch == "\x9b":
            if ch == "\x9b":
                kind = "["
                i += 1
            else:
                if i + 1 >= n:
                    break
                kind = text[i + 1]
                i += 2
            if kind == "[":
                # CSI: parameters 0x30-0x3F, intermediates 0x20-0x2F, final 0x40-0x7E
                start = i
                while i < n and "\x30" <= text[i] <= "\x3f":
                    i += 1
                params = text[start:i]
                istart = i
                while i < n and "\x20" <= text[i] <= "\x2f":
                    i += 1
                inter = text[istart:i]
                if i >= n:
                    break
                final = text[i]
                i += 1
                if not ("\x40" <= final <= "\x7e"):
                    continue  # malformed: drop it
                if final == "m" and not inter and not params[:1] in ("<", "=", ">", "?"):
                    apply_sgr(style, params)
                elif final == "C" and not inter and params.isdigit():
                    for _ in range(min(int(params) or 1, 1000)):
                        put(" ", 1)
                # any other CSI: skipped
            elif kind in ("]", "P", "_", "^", "X"):
                # OSC / DCS / APC / PM / SOS: up to BEL (OSC) or ST (ESC \)
                while i < n:
                    if text[i] == "\x07" and kind == "]":
                        i += 1
                        break
                    if text[i] == "\x9c":
                        i += 1
                        break
                    if text[i] == "\x1b" and i + 1 < n and text[i + 1] == "\\":
                        i += 2
                        break
                    i += 1
            elif kind in "()*+-./%#":
                i += 1  # charset designation etc.: one more byte
            # else: a two-byte escape (ESC 7, ESC =, ...): skipped
            continue
        i += 1
        if ch == "\n":
            lines.append([])
            line = lines[-1]
            col = 0
            continue
        if ch == "\r":
            col = 0
            continue
        if ch == "\t":
            nxt = (col // 8 + 1) * 8
            while col < nxt:
                put(" ", 1)
            continue
        if ch == "\b":
            col = max(0, col - 1)
            continue
        if cp < 32 or cp == 0x7F or 0x80 <= cp < 0xA0:
            continue  # other control characters
        w = char_width(ch)
        if w == 0:
            # combining mark / ZWJ / variation selector: join the previous cell
            target = col - 1
            while target >= 0 and target < len(line) and line[target].width == 0:
                target -= 1
            if 0 <= target < len(line):
                line[target].text += ch
            continue
        put(ch, w)
    return lines


def layout(lines, cols=None, rows=None):
    """Lay logical lines onto a cols x rows grid, wrapping long lines (-J)."""
    if lines and not lines[-1]:
        lines = lines[:-1]  # the newline after the last row
    if cols is None:
        cols = max([len(l) for l in lines] + [1])
    default_key = Style().key()
    grid = []
    for line in lines:
        row = []
        prev_w = 1
        for cell in line:
            if cell.width == 0 and cell.text == "":
                if prev_w == 2:
                    prev_w = 1
                    continue  # filler: re-created below
                cell = Cell(" ", 1, cell.style)  # half of an overwritten wide char
            prev_w = cell.width
            w = cell.width
            if w > cols:  # a wide char on a one-column screen
                cell, w = Cell(" ", 1, cell.style), 1
            if len(row) + w > cols:
                if w == 2 and len(row) < cols:
                    row.append(Cell(" ", 1, cell.style))
                grid.append(row)
                row = []
            row.append(cell)
            if w == 2:
                row.append(Cell("", 0, cell.style))
        grid.append(row)
    if rows is None:
        rows = max(1, len(grid))
    grid = grid[:rows]
    while len(grid) < rows:
        grid.append([])
    for row in grid:
        while len(row) < cols:
            row.append(Cell(" ", 1, default_key))
    return grid, cols, rows


# --------------------------------------------------------------------------
# Fonts
# --------------------------------------------------------------------------
def _font_cmap(path, index=0):
    """Set of code points a TrueType/OpenType font (or TTC member) maps."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return set()
    try:
        base = 0
        if data[:4] == b"ttcf":
            num = struct.unpack(">I", data[8:12])[0]
            index = min(index, num - 1)
            base = struct.unpack(">I", data[12 + 4 * index : 16 + 4 * index])[0]
        num_tables = struct.unpack(">H", data[base + 4 : base + 6])[0]
        cmap_off = None
        for t in range(num_tables):
            rec = base + 12 + 16 * t
            tag = data[rec : rec + 4]
            if tag == b"cmap":
                cmap_off = struct.unpack(">I", data[rec + 8 : rec + 12])[0]
                break
        if cmap_off is None:
            return set()
        nsub = struct.unpack(">H", data[cmap_off + 2 : cmap_off + 4])[0]
        subs = []
        for s in range(nsub):
            rec = cmap_off + 4 + 8 * s
            pid, eid, off = struct.unpack(">HHI", data[rec : rec + 8])
            fmt = struct.unpack(">H", data[cmap_off + off : cmap_off + off + 2])[0]
            subs.append((pid, eid, fmt, cmap_off + off))
        # prefer a full-repertoire table (format 12), then BMP unicode (format 4)
        order = sorted(
            [s for s in subs
             if s[2] in (4, 12) and (s[0] == 0 or (s[0] == 3 and s[1] in (1, 10)))],
            key=lambda s: s[2] != 12,
        )
        cps = set()
        for pid, eid, fmt, off in order[:1]:
            if fmt == 12:
                ngroups = struct.unpack(">I", data[off + 12 : off + 16])[0]
                p = off + 16
                for _ in range(ngroups):
                    start, end, gid = struct.unpack(">III", data[p : p + 12])
                    p += 12
                    if gid == 0:
                        start += 1
                    cps.update(range(start, end + 1))
            elif fmt == 4:
                segx2 = struct.unpack(">H", data[off + 6 : off + 8])[0]
                seg = segx2 // 2
                ends = struct.unpack(">%dH" % seg, data[off + 14 : off + 14 + segx2])
                p = off + 16 + segx2
                starts = struct.unpack(">%dH" % seg, data[p : p + segx2])
                p += segx2
                deltas = struct.unpack(">%dh" % seg, data[p : p + segx2])
                p += segx2
                ro_base = p
                ranges = struct.unpack(">%dH" % seg, data[p : p + segx2])
                for k in range(seg):
                    s, e, d, ro = starts[k], ends[k], deltas[k], ranges[k]
                    if s == 0xFFFF:
                        continue
                    if ro == 0:
                        for c in range(s, e + 1):
                            if (c + d) & 0xFFFF:
                                cps.add(c)
                    else:
                        for c in range(s, e + 1):
                            gp = ro_base + 2 * k + ro + 2 * (c - s)
                            if gp + 2 <= len(data):
                                g = struct.unpack(">H", data[gp : gp + 2])[0]
                                if g:
                                    cps.add(c)
        return cps
    except (struct.error, IndexError, ValueError):
        return set()


class FontFace:
    """One font file at one size, with its character map."""

    def __init__(self, path, size, index=0):
        self.path = path
        self.index = index
        self.size = size
        self.font = ImageFont.truetype(path, size, index=index)
        self._cmap = None
        self._sized = {}

    def has(self, text):
        if self._cmap is None:
            self._cmap = _font_cmap(self.path, self.index)
        return ord(text[0]) in self._cmap

    def at_size(self, size):
        size = max(4, int(size))
        if size == self.size:
            return self.font
        f = self._sized.get(size)
        if f is None:
            f = self._sized[size] = ImageFont.truetype(self.path, size, index=self.index)
        return f


DEJAVU_DIRS = [
    "/usr/share/fonts/truetype/dejavu",
    "/usr/share/fonts/dejavu",
    "/usr/share/fonts/TTF",
    "/usr/local/share/fonts",
    os.path.expanduser("~/.local/share/fonts"),
    "/Library/Fonts",
    os.path.expanduser("~/Library/Fonts"),
]

FALLBACK_FONTS = [
    # (path, ttc index)
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 0),
    ("/usr/share/fonts/truetype/noto/NotoSansMono-Regular.ttf", 0),
    ("/usr/share/fonts/truetype/noto/NotoSansSymbols2-Regular.ttf", 0),
    ("/usr/share/fonts/truetype/noto/NotoSansSymbols-Regular.ttf", 0),
    ("/usr/share/fonts/truetype/noto/NotoSansMath-Regular.ttf", 0),
    ("/usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf", 0),
    ("/usr/share/fonts/truetype/symbola/Symbola.ttf", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 0),
    ("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf", 0),
    ("/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf", 0),
    ("/usr/share/fonts/opentype/unifont/unifont.otf", 0),
    ("/usr/share/fonts/truetype/unifont/unifont.ttf", 0),
]

EMOJI_FONTS = [
    "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",
    "/usr/share/fonts/noto/NotoColorEmoji.ttf",
    "/usr/share/fonts/truetype/noto-color-emoji/NotoColorEmoji.ttf",
]


def find_dejavu(name):
    for d in DEJAVU_DIRS:
        p = os.path.join(d, name)
        if os.path.exists(p):
            return p
    return None


def _variant(path, suffix):
    """DejaVuSansMono.ttf -> DejaVuSansMono-Bold.ttf (when it exists)."""
    root, ext = os.path.splitext(path)
    for cut in ("-Regular", "-Book", ""):
        if cut and root.endswith(cut):
            r = root[: -len(cut)]
        elif not cut:
            r = root
        else:
            continue
        p = r + "-" + suffix + ext
        if os.path.exists(p):
            return p
    return None


class Fonts:
    def __init__(self, size, regular=None, bold=None, extra_fallbacks=()):
        regular = regular or find_dejavu("DejaVuSansMono.ttf")
        if not regular:
            sys.stderr.write(
                "ansi2png: DejaVu Sans Mono not found.\n"
                "  Debian/Ubuntu: sudo apt-get install -y fonts-dejavu-core\n"
                "  or pass --font /path/to/a/monospace.ttf\n"
            )
            sys.exit(2)
        self.size = size
        self.regular = FontFace(regular, size)
        bold = bold or _variant(regular, "Bold")
        self.bold = FontFace(bold, size) if bold else None
        ital = _variant(regular, "Oblique") or _variant(regular, "Italic")
        self.italic = FontFace(ital, size) if ital else None
        bi = _variant(regular, "BoldOblique") or _variant(regular, "BoldItalic")
        self.bold_italic = FontFace(bi, size) if bi else None
        self.fallbacks = []
        for p in list(extra_fallbacks) + [p for p, _ in FALLBACK_FONTS]:
            if p and os.path.exists(p) and os.path.realpath(p) != os.path.realpath(regular):
                try:
                    self.fallbacks.append(FontFace(p, size))
                except OSError:
                    pass
        self.emoji = None
        for p in EMOJI_FONTS:
            if os.path.exists(p):
                try:
                    # CBDT colour bitmaps exist at one strike only (109 px)
                    self.emoji = FontFace(p, 109)
                    break
                except OSError:
                    continue
        ascent, descent = self.regular.font.getmetrics()
        self.ascent = ascent
        self.descent = descent
        adv = self.regular.font.getlength("M")
        self.advance = adv
        self.cell_w = max(1, int(round(adv)))
        self.cell_h = max(1, ascent + descent)

    def primary(self, bold, italic):
        if bold and italic and self.bold_italic:
            return self.bold_italic
        if bold and self.bold:
            return self.bold
        if italic and self.italic:
            return self.italic
        return self.regular


# --------------------------------------------------------------------------
# Shapes drawn by hand: box drawing, blocks, braille
# --------------------------------------------------------------------------
# urdl weights: 0 none, 1 light, 2 heavy, 3 double
_BOX = {}
for _cp, _w in zip(
    range(0x2500, 0x254C),
    "0101 0202 1010 2020 - - - - - - - - "
    "0110 0210 0120 0220 0011 0012 0021 0022 1100 1200 2100 2200 1001 1002 2001 2002 "
    "1110 1210 2110 1120 2120 2210 1220 2220 1011 1012 2011 1021 2021 2012 1022 2022 "
    "0111 0112 0211 0212 0121 0122 0221 0222 1101 1102 1201 1202 2101 2102 2201 2202 "
    "1111 1112 1211 1212 2111 1121 2121 2112 2211 1122 1221 2212 1222 2122 2221 2222".split(),
):
    if _w != "-":
        _BOX[_cp] = tuple(int(c) for c in _w)
for _cp, _w in zip(
    range(0x2550, 0x256D),
    "0303 3030 0310 0130 0330 0013 0031 0033 1300 3100 3300 1003 3001 3003 "
    "1310 3130 3330 1013 3031 3033 0313 0131 0333 1303 3101 3303 1313 3131 3333".split(),
):
    _BOX[_cp] = tuple(int(c) for c in _w)
for _cp, _w in zip(
    range(0x2574, 0x2580),
    "0001 1000 0100 0010 0002 2000 0200 0020 0201 1020 0102 2010".split(),
):
    _BOX[_cp] = tuple(int(c) for c in _w)

# dashed lines: code point -> (horizontal?, heavy?, dashes)
_DASH = {
    0x2504: (True, False, 3), 0x2505: (True, True, 3),
    0x2506: (False, False, 3), 0x2507: (False, True, 3),
    0x2508: (True, False, 4), 0x2509: (True, True, 4),
    0x250A: (False, False, 4), 0x250B: (False, True, 4),
    0x254C: (True, False, 2), 0x254D: (True, True, 2),
    0x254E: (False, False, 2), 0x254F: (False, True, 2),
}


def is_shape(cp):
    return (
        cp in _BOX
        or cp in _DASH
        or 0x256D <= cp <= 0x2573
        or 0x2580 <= cp <= 0x259F
        or 0x2800 <= cp <= 0x28FF
        or cp in (0xE0B0, 0xE0B2)
    )


SS = 4  # supersampling for shapes


def shape_mask(cp, w, h, size):
    """An 'L' mask of w x h pixels with the shape of code point cp."""
    S = SS
    img = Image.new("L", (w * S, h * S), 0)
    d = ImageDraw.Draw(img)
    light = max(1, int(round(size / 14.0)))
    heavy = max(light + 1, int(round(light * 2.2)))
    cx = w // 2  # pixel column of the vertical stroke (final pixels)
    cy = h // 2

    def rect(x0, y0, x1, y1, fill=255):
        # final-pixel coordinates, x1/y1 exclusive
        if x1 > x0 and y1 > y0:
            d.rectangle([x0 * S, y0 * S, x1 * S - 1, y1 * S - 1], fill=fill)

    def thick(weight):
        return light if weight == 1 else heavy

    def hline(x0, x1, y, t):
        rect(x0, y - t // 2, x1, y - t // 2 + t)

    def vline(y0, y1, x, t):
        rect(x - t // 2, y0, x - t // 2 + t, y1)

    if cp in _BOX:
        u, r, dn, l = _BOX[cp]
        g = max(light + 1, int(round(size / 8.0)))  # half gap of double lines
        has_double = 3 in (u, r, dn, l)
        if not has_double:
            tv = max([thick(x) for x in (u, dn) if x] + [0])
            th = max([thick(x) for x in (l, r) if x] + [0])
            # arms reach the centre plus half the perpendicular stroke
            if l:
                hline(0, cx + (tv + 1) // 2 if tv else cx + 1, cy, thick(l))
            if r:
                hline(cx - tv // 2 if tv else cx, w, cy, thick(r))
            if u:
                vline(0, cy + (th + 1) // 2 if th else cy + 1, cx, thick(u))
            if dn:
                vline(cy - th // 2 if th else cy, h, cx, thick(dn))
        else:
            t = light

            def start_h(side, other):
                # offset from the centre where one line of a double arm
                # begins; `side` is the perpendicular arm on that line's side
                if side == 3:
                    return g  # stop at the inner line of the crossing pair
                if side == 0 and other == 3:
                    return -g  # outer corner: reach the far line
                return 0

            def single_start(a, b, opposite):
                # where a single arm next to a double pair (a, b) begins
                if a == 3 and b == 3 and not opposite:
                    return g  # ╟: stop at the near line
                if 3 in (a, b):
                    return -g  # ╓, ╫: reach the far line
                return 0

            if r == 3:
                hline(cx + start_h(u, dn) - t // 2, w, cy - g, t)
                hline(cx + start_h(dn, u) - t // 2, w, cy + g, t)
            elif r:
                hline(cx + single_start(u, dn, l) - t // 2, w, cy, t)
            if l == 3:
                hline(0, cx - start_h(u, dn) + (t + 1) // 2, cy - g, t)
                hline(0, cx - start_h(dn, u) + (t + 1) // 2, cy + g, t)
            elif l:
                hline(0, cx - single_start(u, dn, r) + (t + 1) // 2, cy, t)
            if dn == 3:
                vline(cy + start_h(l, r) - t // 2, h, cx - g, t)
                vline(cy + start_h(r, l) - t // 2, h, cx + g, t)
            elif dn:
                vline(cy + single_start(l, r, u) - t // 2, h, cx, t)
            if u == 3:
                vline(0, cy - start_h(l, r) + (t + 1) // 2, cx - g, t)
                vline(0, cy - start_h(r, l) + (t + 1) // 2, cx + g, t)
            elif u:
                vline(0, cy - single_start(l, r, dn) + (t + 1) // 2, cx, t)
    elif cp in _DASH:
        horiz, hv, n = _DASH[cp]
        t = heavy if hv else light
        span = w if horiz else h
        seg = span / float(n)
        for k in range(n):
            a = int(round(k * seg + seg * 0.15))
            b = int(round((k + 1) * seg - seg * 0.15))
            if horiz:
                hline(a, b, cy, t)
            else:
                vline(a, b, cx, t)
    elif 0x256D <= cp <= 0x2570:
        # rounded corners: a quarter circle through the cell centre
        t = light
        rad = min(w, h) // 2
        ccx = (cx - t // 2) * S + (t * S) // 2
        ccy = (cy - t // 2) * S + (t * S) // 2
        R = rad * S
        tw = t * S
        if cp == 0x256D:  # ╭ right + down
            centre = (ccx + R, ccy + R)
            start, end = 180, 270
            rect_h = (cx + rad, w)
            rect_v = (cy + rad, h)
        elif cp == 0x256E:  # ╮ left + down
            centre = (ccx - R, ccy + R)
            start, end = 270, 360
            rect_h = (0, cx - rad)
            rect_v = (cy + rad, h)
        elif cp == 0x256F:  # ╯ left + up
            centre = (ccx - R, ccy - R)
            start, end = 0, 90
            rect_h = (0, cx - rad)
            rect_v = (0, cy - rad)
        else:  # ╰ right + up
            centre = (ccx + R, ccy - R)
            start, end = 90, 180
            rect_h = (cx + rad, w)
            rect_v = (0, cy - rad)
        box = [centre[0] - R - tw // 2, centre[1] - R - tw // 2,
               centre[0] + R + tw // 2 - 1, centre[1] + R + tw // 2 - 1]
        d.arc(box, start, end, fill=255, width=tw)
        hline(rect_h[0], rect_h[1], cy, t)
        vline(rect_v[0], rect_v[1], cx, t)
    elif 0x2571 <= cp <= 0x2573:
        tw = light * S
        if cp in (0x2571, 0x2573):
            d.line([(0, h * S), (w * S, 0)], fill=255, width=tw)
        if cp in (0x2572, 0x2573):
            d.line([(0, 0), (w * S, h * S)], fill=255, width=tw)
    elif 0x2580 <= cp <= 0x259F:
        W, H = w * S, h * S

        def frac(x0, y0, x1, y1, fill=255):
            d.rectangle([int(round(x0 * W)), int(round(y0 * H)),
                         int(round(x1 * W)) - 1, int(round(y1 * H)) - 1], fill=fill)

        if cp == 0x2580:
            frac(0, 0, 1, 0.5)
        elif 0x2581 <= cp <= 0x2588:
            frac(0, 1 - (cp - 0x2580) / 8.0, 1, 1)
        elif 0x2589 <= cp <= 0x258F:
            frac(0, 0, (0x2590 - cp) / 8.0, 1)
        elif cp == 0x2590:
            frac(0.5, 0, 1, 1)
        elif cp in (0x2591, 0x2592, 0x2593):
            frac(0, 0, 1, 1, fill={0x2591: 64, 0x2592: 128, 0x2593: 192}[cp])
        elif cp == 0x2594:
            frac(0, 0, 1, 1 / 8.0)
        elif cp == 0x2595:
            frac(7 / 8.0, 0, 1, 1)
        else:
            # quadrants: bits UL, UR, LL, LR
            quad = {
                0x2596: (0, 0, 1, 0), 0x2597: (0, 0, 0, 1), 0x2598: (1, 0, 0, 0),
                0x2599: (1, 0, 1, 1), 0x259A: (1, 0, 0, 1), 0x259B: (1, 1, 1, 0),
                0x259C: (1, 1, 0, 1), 0x259D: (0, 1, 0, 0), 0x259E: (0, 1, 1, 0),
                0x259F: (0, 1, 1, 1),
            }[cp]
            if quad[0]:
                frac(0, 0, 0.5, 0.5)
            if quad[1]:
                frac(0.5, 0, 1, 0.5)
            if quad[2]:
                frac(0, 0.5, 0.5, 1)
            if quad[3]:
                frac(0.5, 0.5, 1, 1)
    elif 0x2800 <= cp <= 0x28FF:
        bits = cp - 0x2800
        dots = [(0, 0, 0x01), (0, 1, 0x02), (0, 2, 0x04), (1, 0, 0x08),
                (1, 1, 0x10), (1, 2, 0x20), (0, 3, 0x40), (1, 3, 0x80)]
        W, H = w * S, h * S
        rad = max(S, int(min(W / 4.0, H / 8.0) * 0.8))
        for dx, dy, bit in dots:
            if bits & bit:
                x = W * (0.25 + 0.5 * dx)
                y = H * (0.125 + 0.25 * dy)
                d.ellipse([x - rad, y - rad, x + rad, y + rad], fill=255)
    elif cp == 0xE0B0:  # powerline right triangle
        d.polygon([(0, 0), (w * S, h * S / 2.0), (0, h * S)], fill=255)
    elif cp == 0xE0B2:
        d.polygon([(w * S, 0), (0, h * S / 2.0), (w * S, h * S)], fill=255)
    return img.resize((w, h), Image.BOX)


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------
def _is_emoji_cell(text, width):
    ch = text[0]
    if "\ufe0f" in text:
        return True
    if width != 2:
        return False
    return unicodedata.category(ch) == "So" or 0x1F000 <= ord(ch) <= 0x1FAFF


class Renderer:
    def __init__(self, fonts, theme, padding=12, title=None):
        self.fonts = fonts
        self.theme = theme
        self.padding = padding
        self.title = title
        self._glyph_cache = {}
        self._shape_cache = {}
        self._emoji_cache = {}

    def colour(self, c, default):
        if c is None:
            return default
        if c[0] == "i":
            return xterm256(c[1], self.theme["ansi"])
        return c[1]

    def resolve(self, key):
        (fg, bg, ulc, bold, dim, italic, underline, reverse, hidden, strike,
         overline) = key
        fgc = self.colour(fg, self.theme["fg"])
        bgc = self.colour(bg, self.theme["bg"])
        if reverse:
            fgc, bgc = bgc, fgc
        if dim:
            fgc = blend(fgc, bgc, 0.45)
        if hidden:
            fgc = bgc
        ulc = self.colour(ulc, fgc) if ulc is not None else fgc
        return fgc, bgc, ulc

    # -- glyph choice --------------------------------------------------
    def _pick(self, text, bold, italic, avail_w):
        """(kind, data) for drawing `text` in a span of avail_w pixels."""
        key = (text, bold, italic, avail_w)
        hit = self._glyph_cache.get(key)
        if hit is not None:
            return hit
        f = self.fonts
        res = None
        prim = f.primary(bold, italic)
        width = 2 if avail_w > f.cell_w else 1
        if f.emoji and _is_emoji_cell(text, width) and f.emoji.has(text) and not prim.has(text):
            res = ("emoji", None)
        elif prim.has(text):
            res = ("primary", prim)
        elif f.regular.has(text):
            res = ("primary", f.regular)
        else:
            for fb in f.fallbacks:
                if fb.has(text):
                    res = ("fallback", self._fit(fb, text, avail_w))
                    break
            if res is None and f.emoji and f.emoji.has(text):
                res = ("emoji", None)
            if res is None:
                res = ("missing", None)
        self._glyph_cache[key] = res
        return res

    def _fit(self, face, text, avail_w):
        """Font size and offsets so a fallback glyph fits its cells."""
        f = self.fonts
        size = f.size
        font = face.at_size(size)
        try:
            l, t, r, b = font.getbbox(text, anchor="ls")
        except (ValueError, OSError):
            return (font, 0, 0)
        ink_w, ink_h = r - l, b - t
        scale = 1.0
        # like most terminals, let a symbol overhang its cell a little before
        # shrinking it (a shrunk ✉ is hard to read)
        limit = avail_w * 1.2
        if ink_w > limit and ink_w > 0:
            scale = min(scale, limit / float(ink_w))
        if ink_h > f.cell_h and ink_h > 0:
            scale = min(scale, f.cell_h / float(ink_h))
        if scale < 1.0:
            size = max(4, int(size * scale))
            font = face.at_size(size)
            l, t, r, b = font.getbbox(text, anchor="ls")
        # centre the ink horizontally, keep the baseline unless it overflows
        dx = (avail_w - (r - l)) / 2.0 - l
        dy = 0
        if t < -f.ascent:
            dy = -f.ascent - t
        elif b > f.descent:
            dy = f.descent - b
        return (font, dx, dy)

    def _emoji_img(self, text, w, h):
        key = (text, w, h)
        img = self._emoji_cache.get(key)
        if img is None:
            font = self.fonts.emoji.font
            base = text.replace("\ufe0f", "").replace("\ufe0e", "") or text
            base = base[0]
            try:
                canvas = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
                ImageDraw.Draw(canvas).text((0, 0), base, font=font, embedded_color=True)
                bbox = canvas.getbbox()
                if not bbox:
                    raise ValueError("empty emoji")
                canvas = canvas.crop(bbox)
                cw, ch = canvas.size
                s = min((w - 1) / float(cw), (h - 2) / float(ch))
                nw, nh = max(1, int(round(cw * s))), max(1, int(round(ch * s)))
                img = canvas.resize((nw, nh), Image.LANCZOS)
            except (ValueError, OSError):
                img = False
            self._emoji_cache[key] = img
        return img

    def _shape(self, cp, w, h):
        key = (cp, w, h)
        m = self._shape_cache.get(key)
        if m is None:
            m = self._shape_cache[key] = shape_mask(cp, w, h, self.fonts.size)
        return m

    # -- whole image -----------------------------------------------------
    def render(self, grid, cols, rows):
        f = self.fonts
        cw, chh = f.cell_w, f.cell_h
        pad = self.padding
        bar = 0
        if self.title is not None:
            bar = max(chh + 12, 28)
        W = cols * cw + 2 * pad
        H = rows * chh + 2 * pad + bar
        bg0 = self.theme["bg"]
        img = Image.new("RGB", (W, H), bg0)
        draw = ImageDraw.Draw(img)
        if bar:
            self._title_bar(img, draw, W, bar)
        ox, oy = pad, pad + bar

        # pass 1: backgrounds (after resolving reverse etc.)
        resolved = []
        for y, row in enumerate(grid):
            rrow = []
            for x, cell in enumerate(row):
                fgc, bgc, ulc = self.resolve(cell.style)
                rrow.append((fgc, bgc, ulc))
            resolved.append(rrow)
            x = 0
            while x < cols:
                bgc = rrow[x][1]
                x2 = x + 1
                while x2 < cols and rrow[x2][1] == bgc:
                    x2 += 1
                if bgc != bg0:
                    draw.rectangle(
                        [ox + x * cw, oy + y * chh, ox + x2 * cw - 1, oy + (y + 1) * chh - 1],
                        fill=bgc,
                    )
                x = x2

        # pass 2: glyphs and decorations
        for y, row in enumerate(grid):
            top = oy + y * chh
            base_y = top + f.ascent
            for x, cell in enumerate(row):
                if cell.width == 0:
                    continue
                fgc, bgc, ulc = resolved[y][x]
                key = cell.style
                bold, italic = key[3], key[5]
                underline, hidden, strike, overline = key[6], key[8], key[9], key[10]
                left = ox + x * cw
                span = cw * max(1, cell.width if x + cell.width <= cols else 1)
                text = cell.text
                if hidden:
                    text = " "
                if text and text != " " and text[0] not in "\u00a0\u3000":
                    try:
                        self._draw_text(img, draw, text, left, top, base_y, span, fgc, bold, italic)
                    except Exception as e:  # never die on one glyph
                        sys.stderr.write("ansi2png: glyph %r: %s\n" % (text, e))
                if underline:
                    uy = base_y + max(1, f.descent // 2)
                    th = max(1, int(round(f.size / 14.0)))
                    draw.rectangle([left, uy, left + span - 1, uy + th - 1], fill=ulc)
                    if underline == 2:
                        draw.rectangle([left, uy + th + 1, left + span - 1, uy + 2 * th], fill=ulc)
                if strike:
                    sy = base_y - int(f.ascent * 0.32)
                    th = max(1, int(round(f.size / 14.0)))
                    draw.rectangle([left, sy, left + span - 1, sy + th - 1], fill=fgc)
                if overline:
                    draw.rectangle([left, top, left + span - 1, top], fill=fgc)
        return img

    def _draw_text(self, img, draw, text, left, top, base_y, span, fgc, bold, italic):
        f = self.fonts
        cp = ord(text[0])
        if is_shape(cp) and len(text) == 1:
            mask = self._shape(cp, span, f.cell_h)
            img.paste(Image.new("RGB", mask.size, fgc), (left, top), mask)
            return
        text = unicodedata.normalize("NFC", text)
        kind, data = self._pick(text, bold, italic, span)
        if kind == "primary":
            font = data.font
            adv = font.getlength(text[0])
            x = left + (span - adv) / 2.0 if adv <= span else left
            draw.text((x, base_y), text, font=font, fill=fgc, anchor="ls")
            if bold and data is not f.bold and data is not f.bold_italic:
                # no bold face for this glyph: overstrike, as terminals do
                draw.text((x + 1, base_y), text, font=font, fill=fgc, anchor="ls")
        elif kind == "fallback":
            font, dx, dy = data
            draw.text((left + dx, base_y + dy), text, font=font, fill=fgc, anchor="ls")
            if bold:
                draw.text((left + dx + 1, base_y + dy), text, font=font, fill=fgc, anchor="ls")
        elif kind == "emoji":
            em = self._emoji_img(text, span, f.cell_h)
            if em:
                ex = left + (span - em.size[0]) // 2
                ey = top + (f.cell_h - em.size[1]) // 2
                img.paste(em, (ex, ey), em)
            else:
                self._missing(draw, left, top, span, fgc)
        else:
            self._missing(draw, left, top, span, fgc)

    def _missing(self, draw, left, top, span, fgc):
        f = self.fonts
        m = max(1, f.cell_w // 6)
        draw.rectangle(
            [left + m, top + f.cell_h // 6, left + span - 1 - m, top + f.cell_h - 1 - f.cell_h // 6],
            outline=fgc,
        )

    def _title_bar(self, img, draw, W, bar):
        bg = self.theme["bg"]
        tb = blend(bg, (255, 255, 255), 0.08)
        draw.rectangle([0, 0, W - 1, bar - 1], fill=tb)
        draw.line([0, bar - 1, W - 1, bar - 1], fill=blend(bg, (0, 0, 0), 0.4))
        r = max(4, bar // 5)
        cy = bar // 2
        for k, col in enumerate(((255, 95, 86), (255, 189, 46), (39, 201, 63))):
            cx = 14 + r + k * (2 * r + 8)
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=col)
        if self.title:
            path = find_dejavu("DejaVuSans.ttf") or self.fonts.regular.path
            try:
                font = ImageFont.truetype(path, max(8, int(self.fonts.size * 0.9)))
            except OSError:
                font = self.fonts.regular.font
            draw.text((W / 2.0, cy), self.title, font=font,
                      fill=blend(self.theme["fg"], tb, 0.2), anchor="mm")


def render_text(text, out, cols=None, rows=None, font=None, bold_font=None,
                font_size=16, title=None, padding=12, theme="dark", fallbacks=()):
    lines = parse_ansi(text)
    grid, cols, rows = layout(lines, cols, rows)
    fonts = Fonts(font_size, font, bold_font, fallbacks)
    r = Renderer(fonts, THEMES[theme], padding, title)
    img = r.render(grid, cols, rows)
    img.save(out, "PNG", optimize=True)
    return img, fonts, grid


# --------------------------------------------------------------------------
# Self-test
# --------------------------------------------------------------------------
def sample_capture():
    E = "\x1b["
    out = []
    out.append(E + "1m" + "ansi2png self-test" + E + "0m " + E + "2mdim" + E + "22m "
               + E + "3mitalic" + E + "23m " + E + "4munderline" + E + "24m "
               + E + "4:3mcurly" + E + "4:0m " + E + "7mreverse" + E + "27m "
               + E + "9mstrike" + E + "29m " + E + "1;3mbold-italic" + E + "0m")
    out.append("".join(E + "%dm %d " % (40 + i, i) for i in range(8)) + E + "49m"
               + "".join(E + "%dm %d " % (100 + i, i + 8) for i in range(8)) + E + "0m")
    out.append("".join(E + "%dm%s" % (30 + i, "fg%d " % i) for i in range(8))
               + "".join(E + "%dm%s" % (90 + i, "fg%d " % (i + 8)) for i in range(8)) + E + "39m")
    out.append("".join(E + "48;5;%dm " % n for n in range(16, 232, 3)) + E + "0m")
    out.append("".join(E + "48;2;%d;%d;%dm " % (i * 3, 255 - i * 3, 128) for i in range(72)) + E + "0m")
    out.append(E + "38:2::255:128:0mtruecolor colon form" + E + "0m " + E + "38;5;208m256-colour 208"
               + E + "0m " + E + "1;38;2;120;200;255mbold truecolor" + E + "0m")
    out.append("CJK: 漢字かなカナ한국어 | emoji: 😀🚀✨ | symbols: ✉ ✈ ◍ ★ ‼ ↑ ↓ • … ✓ ✗ ⚑ ⏎")
    out.append("combining: e\u0301 a\u0308 | " + E + "?25l" + "\x1b]0;title\x07" + "\x1b(B"
               + "\x1bP1$r0m\x1b\\" + E + "5;31mhidden escapes skipped" + E + "0m")
    out.append("╭──────┬───────╮ ┏━━━┳━━━┓ ╔═══╦═══╗ ┌┄┄┬┈┈┐ ╒═╤═╕ ╓─╥─╖ ┍━┯━┑ ┎─┰─┒")
    out.append("│ left │ right │ ┃ a ┃ b ┃ ║ c ║ d ║ ┆ab┊cd┋ │a│b│ ║a║b║ │a│b│ ┃a┃b┃")
    out.append("├──────┼───────┤ ┣━━━╋━━━┫ ╠═══╬═══╣ ├╌╌┼╍╍┤ ╞═╪═╡ ╟─╫─╢ ┝━┿━┥ ┠─╂─┨")
    out.append("╰──────┴───────╯ ┗━━━┻━━━┛ ╚═══╩═══╝ └──┴──┘ ╘═╧═╛ ╙─╨─╜ ┕━┷━┙ ┖─┸─┚")
    out.append("▁▂▃▄▅▆▇█ ░▒▓ ▌▐▀▄▔▕ ▖▗▘▝▚▞▙▛▜▟ ⣿⡇⠛⠁⠂⠄⡀⠈⠐⠠⢀ ╳╱╲ ╴╵╶╷ "
               + E + "44;97m inbox " + E + "0m" + E + "34m\ue0b0" + E + "0m")
    return "\n".join(out) + "\n"


def self_test(out=None):
    keep = out is not None
    if out is None:
        fd, out = tempfile.mkstemp(suffix=".png", prefix="ansi2png-selftest-")
        os.close(fd)
    failures = []

    def check(cond, what):
        if not cond:
            failures.append(what)

    # parser checks
    st = Style()
    apply_sgr(st, "1;38;5;208;48;2;1;2;3")
    check(st.bold and st.fg == ("i", 208) and st.bg == ("rgb", (1, 2, 3)), "sgr 256/truecolor")
    apply_sgr(st, "22;39;49")
    check(not st.bold and st.fg is None and st.bg is None, "sgr defaults")
    apply_sgr(st, "38:2::10:20:30")
    check(st.fg == ("rgb", (10, 20, 30)), "sgr colon truecolor")
    apply_sgr(st, "97;101")
    check(st.fg == ("i", 15) and st.bg == ("i", 9), "sgr bright")
    lines = parse_ansi("a漢b\x1b[31mc\x1b]8;;x\x07d\x1b[999;Xz\n\x1b[7m😀e\u0301")
    grid, cols, rows = layout(lines)
    check(cols == 7 and rows == 2, "layout size %dx%d" % (cols, rows))
    check([c.text for c in grid[0]] == ["a", "漢", "", "b", "c", "d", "z"], "wide chars: %r" % [c.text for c in grid[0]])
    check(grid[0][4].style[0] == ("i", 1), "colour on c")
    check(grid[1][0].text == "😀" and grid[1][2].text == "e\u0301", "emoji + combining")
    check(grid[1][0].style[7] is True, "reverse carried over the newline")
    g2, c2, r2 = layout(parse_ansi("abcdef\n"), cols=4, rows=3)
    check("".join(c.text for c in g2[1]).strip() == "ef", "wrap of joined lines")
    # garbage never crashes
    for junk in ("\x1b", "\x1b[", "\x1b[38;5m", "\x1b[38;2;1m", "\x1b]unterminated", "\x00\x07\x9b1m", "\udcff"):
        try:
            layout(parse_ansi(junk))
        except Exception as e:  # pragma: no cover
            failures.append("junk %r: %s" % (junk, e))

    # render and look at some pixels
    img, fonts, grid = render_text(sample_capture(), out, font_size=16, title="ansi2png self-test")
    cw, ch = fonts.cell_w, fonts.cell_h
    bar = max(ch + 12, 28)
    pad = 12
    check(img.size[0] == pad * 2 + len(grid[0]) * cw, "image width")

    def px(col, row, fx=0.5, fy=0.5):
        return img.getpixel((int(pad + (col + fx) * cw), int(pad + bar + (row + fy) * ch)))

    check(px(0, 1) == THEMES["dark"]["ansi"][0], "bg black cell: %r" % (px(0, 1),))
    check(px(3, 1) == THEMES["dark"]["ansi"][1], "bg red cell: %r" % (px(3, 1),))
    bx = [c.text for c in grid[12]].index("█")
    check(px(bx, 12, 0.05, 0.05) == THEMES["dark"]["fg"], "full block fills its cell")
    # a horizontal box line leaves no gap between cells
    for x0 in range(cw, 15 * cw):
        column = [img.getpixel((pad + x0, pad + bar + 10 * ch + dy)) for dy in range(ch)]
        if THEMES["dark"]["fg"] not in column:
            failures.append("gap in ├──┼──┤ at x=%d" % x0)
            break
    # a wide character takes two cells: the cell after 漢 starts the next char
    row6 = [c.text for c in grid[6]]
    k = row6.index("漢")
    check(row6[k + 1] == "" and row6[k + 2] == "字", "CJK cell layout")
    if failures:
        sys.stderr.write("ansi2png self-test FAILED:\n  " + "\n  ".join(failures) + "\n")
        return 1
    print("ansi2png self-test ok (%s, %dx%d px, cell %dx%d, fallbacks: %s, emoji font: %s)" % (
        out if keep else "temp file", img.size[0], img.size[1], cw, ch,
        ", ".join(os.path.basename(f.path) for f in fonts.fallbacks) or "none",
        os.path.basename(fonts.emoji.path) if fonts.emoji else "none (placeholder boxes)"))
    if not keep:
        os.unlink(out)
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Render `tmux capture-pane -e -p` output to a PNG.")
    ap.add_argument("input", nargs="?", help="captured text with ANSI escapes, or - for stdin")
    ap.add_argument("output", nargs="?", help="PNG to write")
    ap.add_argument("--cols", type=int, help="screen width in cells (default: widest line)")
    ap.add_argument("--rows", type=int, help="screen height in cells (default: number of lines)")
    ap.add_argument("--font", help="monospace font file (default: DejaVu Sans Mono)")
    ap.add_argument("--bold-font", help="bold font file (default: the -Bold variant of --font)")
    ap.add_argument("--fallback-font", action="append", default=[],
                    help="extra fallback font file, tried first (repeatable)")
    ap.add_argument("--font-size", type=int, default=16, help="pixels (default 16)")
    ap.add_argument("--title", help="draw a window title bar with this text")
    ap.add_argument("--padding", type=int, default=12, help="pixels around the screen (default 12)")
    ap.add_argument("--theme", choices=sorted(THEMES), default="dark")
    ap.add_argument("--self-test", action="store_true",
                    help="render a built-in sample (to OUTPUT if given) and check it")
    a = ap.parse_args(argv)
    if a.self_test:
        return self_test(a.input)
    if not a.input or not a.output:
        ap.error("INPUT and OUTPUT are required (or --self-test)")
    try:
        if a.input == "-":
            raw = sys.stdin.buffer.read()
        else:
            with open(a.input, "rb") as fh:
                raw = fh.read()
    except OSError as e:
        sys.stderr.write("ansi2png: %s\n" % e)
        return 1
    text = raw.decode("utf-8", errors="replace")
    for name, v in (("--cols", a.cols), ("--rows", a.rows), ("--font-size", a.font_size)):
        if v is not None and v <= 0:
            ap.error("%s must be positive" % name)
    render_text(text, a.output, a.cols, a.rows, a.font, a.bold_font, a.font_size,
                a.title, max(0, a.padding), a.theme, a.fallback_font)
    return 0


if __name__ == "__main__":
    sys.exit(main())
