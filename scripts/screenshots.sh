#!/usr/bin/env bash
# Screenshots of the REAL app in a real terminal: tmux runs `braid demo`,
# `tmux capture-pane -e -p -J` reads the screen with its colours, and
# scripts/ansi2png.py turns that into a PNG in screenshots/.
#
#   scripts/screenshots.sh            # build (cargo build --release) and shoot
#   SKIP_BUILD=1 scripts/screenshots.sh
#   BRAID_BIN=/path/to/braid scripts/screenshots.sh
#
# Needs: tmux, fonts-dejavu-core, librsvg2-bin, python3-venv (fonts-wqy-microhei for CJK
# names); rich and Pillow go into a venv under target/ (PyPI). Run as root it apt-get installs what is missing; otherwise it
# prints the command to run.
set -euo pipefail

# ---------------------------------------------------------------------------
# What to shoot. Edit here. One line per PNG:
#   name | size (COLSxROWS) | keys | until
# keys: sent one by one after the UI is up, space separated tmux key names
#   (j, ?, Enter, Escape, Tab, Up, C-d; see `man tmux`, KEY BINDINGS).
#   KEY* presses KEY until the screen matches `until` (an extended regex, grep
#   -E, tried on each line of the plain screen), at most MAX_REPEAT times.
# The demo's queue order depends on the clock, so the demo shots walk down the
# queue (j*) to the first selected row (▌) whose channel icons show WhatsApp or SMS
# beside another channel, and open it (Enter): a timeline that mixes them with mail,
# Telegram or web chat. The composer shot opens a reply (r) there: the title names the
# channel and the status line says how long WhatsApp's window stays open, or that only a
# template can go.
# The team shot walks to the first row one of the demo's simulated colleagues is on
# (◇ viewing, ◆ typing) and opens it: the timeline's title names them.
# ---------------------------------------------------------------------------
MIXED='▌[^│]*[✆☏][✉✈◍✆☏☎⚑◈◌]'
SHOTS=(
  "demo-160x45|160x45|j* Enter|$MIXED"
  "demo-80x24|80x24|j* Enter|$MIXED"
  "channels-160x45|160x45|j* Enter r|▌[^│]*✆"
  "help-160x45|160x45|?|"
  "team-160x45|160x45|j* Enter|▌[^│]*[◇◆]"
  "rules-160x45|160x45|:rules Enter|"
  "reports-160x45|160x45|g R|"
)
MAX_REPEAT="${MAX_REPEAT:-60}"
# Text that shows the UI has drawn (plain text, searched with grep -F in the
# captured screen): the mode in braid's status line. After it appears (and
# after each key) the script also waits for the screen to stop changing.
# READY_TEXT= (empty) waits only for a non-empty, settled screen.
READY_TEXT="${READY_TEXT-NORMAL}"
READY_TIMEOUT="${READY_TIMEOUT:-30}"   # seconds to wait for the first draw
SETTLE_MS="${SETTLE_MS:-500}"          # screen unchanged this long = drawn
KEY_TIMEOUT="${KEY_TIMEOUT:-3}"        # seconds a key may take to change the screen
TITLE="${TITLE:-braid}"                # window title drawn above the screen
FONT_SIZE="${FONT_SIZE:-16}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT_DIR="${OUT_DIR:-$ROOT/screenshots}"
RENDER="$ROOT/scripts/ansi2png.py"

say() { printf 'screenshots: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# ---------------------------------------------------------------------------
# Dependencies
# ---------------------------------------------------------------------------
APT_UPDATED=0
apt_install() {
  # apt_install REQUIRED(0|1) PKG...
  local required="$1"; shift
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    if [ "$required" = 1 ]; then
      die "missing: $*. Install with: sudo apt-get install -y $*"
    fi
    say "optional, for more glyphs: sudo apt-get install -y $*"
    return 0
  fi
  say "installing: $*"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1; then
    if [ "$APT_UPDATED" = 0 ]; then
      APT_UPDATED=1
      apt-get update -q >/dev/null 2>&1 || true
    fi
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; then
      if [ "$required" = 1 ]; then die "could not install: $*"; fi
      say "warning: could not install optional $*"
    fi
  fi
}

# rich (ANSI -> SVG, in a venv of our own under target/, so nothing is installed into the
# system's python) and librsvg's rsvg-convert (SVG -> PNG) render the captured screens.
VENV="$ROOT/target/shot-venv"
ensure_venv() {
  if "$VENV/bin/python" -c 'import rich, PIL' >/dev/null 2>&1; then
    PYTHON="$VENV/bin/python"
    return 0
  fi
  say "python venv with rich and Pillow in ${VENV#"$ROOT"/}"
  python3 -m venv "$VENV" || die "python3 -m venv failed: apt-get install -y python3-venv"
  "$VENV/bin/pip" install -q rich pillow || die "pip install rich pillow failed"
  PYTHON="$VENV/bin/python"
}

ensure_deps() {
  local missing=()
  command -v tmux >/dev/null 2>&1 || missing+=(tmux)
  [ -e /usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf ] || missing+=(fonts-dejavu-core)
  command -v rsvg-convert >/dev/null 2>&1 || missing+=(librsvg2-bin)
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
  if [ "${#missing[@]}" -gt 0 ]; then
    apt_install 1 "${missing[@]}"
  fi
  # fontconfig falls back to these for what DejaVu lacks (the demo has CJK names).
  [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || apt_install 0 fonts-wqy-microhei
  ensure_venv
}

# ---------------------------------------------------------------------------
# tmux on a private socket, with a config of our own (not the user's)
# ---------------------------------------------------------------------------
TMP=""
TMUX_CONF=""
# The server's socket lives in our temp dir: nothing to collide with, nothing
# left behind.
tm() { tmux -u -S "$TMP/tmux.sock" -f "$TMUX_CONF" "$@"; }

cleanup() {
  if [ -n "$TMUX_CONF" ]; then
    tm kill-server >/dev/null 2>&1 || true
  fi
  if [ -n "$TMP" ] && [ -d "$TMP" ]; then
    rm -rf "$TMP"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now_ms() { date +%s%3N; }

screen_text() { tm capture-pane -p -t "$1" 2>/dev/null || true; }

pane_dead() { [ "$(tm display-message -p -t "$1" '#{pane_dead}' 2>/dev/null || echo 1)" = 1 ]; }

show_screen() {
  say "---- screen of $1 ----"
  screen_text "$1" | sed -e 's/[[:space:]]*$//' | sed -e '/^$/N;/^\n$/D' >&2
  say "----"
}

show_log() {
  local log="$TMP/${1#shot-}.stderr"
  if [ -s "$log" ]; then
    say "---- stderr of the app ----"
    tail -n 40 "$log" >&2
    say "----"
  fi
}

# Wait until the screen has not changed for SETTLE_MS (and, if given, shows
# READY_TEXT); fail after TIMEOUT seconds.
wait_drawn() {
  local target="$1" timeout_s="$2" need_text="$3"
  local deadline=$(( $(now_ms) + timeout_s * 1000 ))
  local last="" cur stable_since
  stable_since=$(now_ms)
  while :; do
    if pane_dead "$target"; then
      show_screen "$target"
      show_log "$target"
      die "the app exited before the screenshot (see above)"
    fi
    cur="$(screen_text "$target")"
    if [ "$cur" != "$last" ]; then
      last="$cur"
      stable_since=$(now_ms)
    elif [ -n "$(printf '%s' "$cur" | tr -d '[:space:]')" ] &&
         { [ -z "$need_text" ] || grep -qF -- "$need_text" <<<"$cur"; } &&
         [ $(( $(now_ms) - stable_since )) -ge "$SETTLE_MS" ]; then
      return 0
    fi
    if [ "$(now_ms)" -ge "$deadline" ]; then
      show_screen "$target"
      show_log "$target"
      if [ -n "$need_text" ]; then
        die "timed out after ${timeout_s}s waiting for \"$need_text\" on the screen"
      fi
      die "timed out after ${timeout_s}s waiting for the screen to settle"
    fi
    sleep 0.1
  done
}

# Send one key, wait for the screen to change (an app may take a moment to
# redraw; a key that changes nothing costs KEY_TIMEOUT), then to settle.
send_key() {
  local target="$1" key="$2" before deadline
  before="$(screen_text "$target")"
  tm send-keys -t "$target" -- "$key"
  deadline=$(( $(now_ms) + KEY_TIMEOUT * 1000 ))
  while [ "$(screen_text "$target")" = "$before" ] && [ "$(now_ms)" -lt "$deadline" ]; do
    sleep 0.05
  done
  wait_drawn "$target" 10 ""
}

shoot() {
  local name="$1" size="$2" keys="$3" until="$4"
  local cols="${size%x*}" rows="${size#*x}"
  local session="shot-$name" data="$TMP/data-$name"
  mkdir -p "$data" "$TMP/home-$name/config" "$TMP/home-$name/state" "$TMP/home-$name/cache"
  say "$name: ${cols}x${rows}, keys: ${keys:-none}"
  # A fresh data dir per shot, and XDG dirs of its own so that no user
  # configuration changes what the screenshot shows. stderr goes to a log
  # (shown if the app fails), stdout is the terminal tmux captures.
  tm new-session -d -s "$session" -x "$cols" -y "$rows" \
    sh -c 'log="$1"; shift; exec "$@" 2>"$log"' sh "$TMP/$name.stderr" \
    env -u BRAID_CONFIG -u BRAID_DATA_DIR -u NO_COLOR COLORTERM=truecolor LANG=C.UTF-8 LC_ALL=C.UTF-8 TZ="${TZ:-UTC}" \
        XDG_CONFIG_HOME="$TMP/home-$name/config" \
        XDG_STATE_HOME="$TMP/home-$name/state" \
        XDG_CACHE_HOME="$TMP/home-$name/cache" \
        XDG_DATA_HOME="$TMP/home-$name/data" \
        "$BIN" demo --data-dir "$data"
  local got
  got="$(tm display-message -p -t "$session" '#{window_width}x#{window_height}')"
  [ "$got" = "${cols}x${rows}" ] || die "tmux window is $got, wanted ${cols}x${rows}"
  wait_drawn "$session" "$READY_TIMEOUT" "$READY_TEXT"
  local k n
  for k in $keys; do
    if [ "${#k}" -gt 1 ] && [ "${k%\*}" != "$k" ]; then
      k="${k%\*}"
      [ -n "$until" ] || die "$name: \"$k*\" needs the until pattern (4th field)"
      n=0
      while ! screen_text "$session" | LC_ALL=C.UTF-8 grep -qE -- "$until"; do
        if [ "$n" -ge "$MAX_REPEAT" ]; then
          say "warning: $name: pressed $k $n times, the screen never matched: $until"
          break
        fi
        send_key "$session" "$k"
        n=$((n + 1))
      done
      say "$name: $k x$n"
      continue
    fi
    send_key "$session" "$k"
  done
  tm capture-pane -e -p -J -t "$session" >"$TMP/$name.ansi"
  tm kill-session -t "$session" >/dev/null 2>&1 || true
  "$PYTHON" "$RENDER" "$TMP/$name.ansi" "$OUT_DIR/$name.png" \
    --cols "$cols" --rows "$rows" --font-size "$FONT_SIZE" --title "$TITLE"
  say "wrote ${OUT_DIR#"$ROOT"/}/$name.png"
}

main() {
  ensure_deps
  cd "$ROOT"
  if [ -n "${BRAID_BIN:-}" ]; then
    BIN="$BRAID_BIN"
  else
    BIN="$ROOT/target/release/braid"
    if [ -z "${SKIP_BUILD:-}" ]; then
      command -v cargo >/dev/null 2>&1 || die "cargo not found (install Rust: rustup.rs)"
      say "cargo build --release"
      cargo build --release --quiet
    fi
  fi
  [ -x "$BIN" ] || die "no binary at $BIN"
  if ! "$BIN" demo --help 2>&1 | grep -qi 'usage'; then
    die "\`$BIN demo --help\` prints no usage: this build has no working demo command"
  fi

  TMP="$(mktemp -d "${TMPDIR:-/tmp}/braid-shots.XXXXXX")"
  TMUX_CONF="$TMP/tmux.conf"
  local term=tmux-256color
  infocmp "$term" >/dev/null 2>&1 || [ -e /usr/share/terminfo/t/$term ] || [ -e /lib/terminfo/t/$term ] || term=screen-256color
  cat >"$TMUX_CONF" <<EOF
set -g default-terminal $term
set -as terminal-overrides ',*:Tc'
set -g status off
set -g escape-time 0
set -g remain-on-exit on
set -g history-limit 100
EOF
  export TERM=xterm-256color
  unset TMUX   # we may be running inside someone's tmux: ours is separate
  mkdir -p "$OUT_DIR"
  local shot name size keys until
  for shot in "${SHOTS[@]}"; do
    IFS='|' read -r name size keys until <<<"$shot"
    shoot "$name" "$size" "$keys" "$until"
  done
}

main "$@"
