#!/usr/bin/env bash
# The web chat beside the TUI, from the real programs: `braid demo` runs in tmux, headless
# Chromium (driven through chromedriver's WebDriver API with curl) opens the demo page the demo
# serves, a visitor writes, the agent answers in the TUI, and both screens are put side by side in
# screenshots/webchat-demo.png.
#
#   scripts/webchat-screenshot.sh          # uses target/release/braid (cargo build --release)
#   BRAID_BIN=/path/to/braid scripts/webchat-screenshot.sh
#
# Needs: tmux, chromium, chromium-driver, curl, python3-venv and librsvg2-bin, and port 8765
# free (the demo's web chat). The TUI is rendered by scripts/ansi2png.py (rich + rsvg-convert)
# and the two pictures are put side by side with Pillow (rich and Pillow in a venv under target/).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${BRAID_BIN:-$ROOT/target/release/braid}"
PY="$ROOT/target/shot-venv/bin/python"
if ! "$PY" -c 'import rich, PIL' >/dev/null 2>&1; then
  python3 -m venv "$ROOT/target/shot-venv"
  "$ROOT/target/shot-venv/bin/pip" install -q rich pillow
fi
COLS=150
ROWS=42
SESSION="braid-webchat-shot-$$"
WD_PORT="${WD_PORT:-9517}"
WORK="$(mktemp -d)"
DRIVER_PID=""

say() { printf 'webchat-screenshot: %s\n' "$*" >&2; }
SID=""
cleanup() {
  tmux kill-session -t "$SESSION" 2>/dev/null || true
  # Closing the session closes the browser; then chromedriver's process group (Chromium included).
  [ -n "$SID" ] && curl -s -X DELETE "http://127.0.0.1:$WD_PORT/session/$SID" >/dev/null 2>&1 || true
  [ -n "$DRIVER_PID" ] && kill -- "-$DRIVER_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

screen() { tmux capture-pane -p -t "$SESSION"; }
wait_for() { # wait_for TEXT SECONDS
  local end=$((SECONDS + $2))
  until screen | grep -qF -- "$1"; do
    [ $SECONDS -lt $end ] || { say "timed out waiting for '$1'"; screen >&2; exit 1; }
    sleep 0.2
  done
}

say "starting braid demo in tmux (${COLS}x${ROWS})"
tmux new-session -d -s "$SESSION" -x "$COLS" -y "$ROWS" \
  "$BIN demo --data-dir $WORK/data --messages 1500 --seed 7; sleep 30"
wait_for NORMAL 60

say "starting chromedriver and headless chromium"
setsid chromedriver --port="$WD_PORT" >/dev/null 2>&1 &
DRIVER_PID=$!
for _ in $(seq 100); do curl -s "http://127.0.0.1:$WD_PORT/status" >/dev/null && break; sleep 0.1; done
wd() { curl -s -X "$1" -H 'Content-Type: application/json' "http://127.0.0.1:$WD_PORT$2" -d "${3:-{\}}"; }
json() { $PY -c "import json,sys; v=json.load(sys.stdin)['value']; print($1)"; }
SID=$(wd POST /session "{\"capabilities\":{\"alwaysMatch\":{\"goog:chromeOptions\":{\"binary\":\"/usr/bin/chromium\",\"args\":[\"--headless\",\"--no-sandbox\",\"--disable-gpu\",\"--no-first-run\",\"--disable-background-networking\",\"--disable-component-update\",\"--disable-sync\",\"--hide-scrollbars\",\"--window-size=560,820\",\"--user-data-dir=$WORK/profile\"]}}}}" | json "v['sessionId']")
S="/session/$SID"
el() { wd POST "$S/element" "{\"using\":\"css selector\",\"value\":\"$1\"}" | json "list(v.values())[0]"; }
type_in() { wd POST "$S/element/$(el "$1")/value" "$($PY -c 'import json,sys; print(json.dumps({"text": sys.argv[1]}))' "$2")" >/dev/null; }

wd POST "$S/url" '{"url":"http://127.0.0.1:8765/"}' >/dev/null
sleep 2
type_in '#braid-chat-email' 'mia.novak@example.com'
type_in '#braid-chat-input' 'Hi! Do you have the Trailblazer 2 tent in green? I could pick it up on Saturday.'
wd POST "$S/element/$(el '#braid-chat-send')/click" >/dev/null
sleep 2

say "answering in the TUI"
tmux send-keys -t "$SESSION" g g; sleep 0.5; [ -n "${DEBUG:-}" ] && screen >&2
sleep 0.5
for _ in $(seq 40); do
  screen | grep -q '▌.*Trailbl' && break
  tmux send-keys -t "$SESSION" j
  sleep 0.3
done
screen | grep -q '▌.*Trailbl' || { say "the visitor's conversation is not in the queue"; screen >&2; exit 1; }
tmux send-keys -t "$SESSION" Enter
sleep 0.5
tmux send-keys -t "$SESSION" r
sleep 1.5
tmux send-keys -t "$SESSION" -l "Hi Mia! Yes, the green Trailblazer 2 is in stock. I've put one aside for you for Saturday."
sleep 1
for _ in 1 2 3; do
  tmux send-keys -t "$SESSION" C-s
  sleep 1
  screen | grep -q 'press send again' || break
done
wait_for 'sent ✓' 10
sleep 1

say "capturing both screens"
wd GET "$S/screenshot" | json "v" | base64 -d > "$WORK/browser.png"
tmux capture-pane -e -p -J -t "$SESSION" > "$WORK/tui.ansi"
$PY "$ROOT/scripts/ansi2png.py" "$WORK/tui.ansi" "$WORK/tui.png" --cols "$COLS" --rows "$ROWS" --title "braid demo"
$PY - "$WORK/tui.png" "$WORK/browser.png" "$ROOT/screenshots/webchat-demo.png" <<'PY'
import sys
from PIL import Image
tui, web, out = sys.argv[1:4]
a = Image.open(tui).convert("RGB")
b = Image.open(web).convert("RGB")
b = b.resize((round(b.width * a.height / b.height), a.height), Image.LANCZOS)
pad = 24
img = Image.new("RGB", (a.width + pad + b.width, a.height), "white")
img.paste(a, (0, 0))
img.paste(b, (a.width + pad, 0))
img.save(out, optimize=True)
PY
say "wrote screenshots/webchat-demo.png"
