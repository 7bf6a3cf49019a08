#!/usr/bin/env bash
# The REAL braid binary in a real terminal (tmux) on a big demo workspace:
#   - start to first frame: wall time from launching `braid --data-dir DIR` in a
#     160x45 tmux pane until the screen shows the status line (NORMAL) and the
#     queue's first row; median of RUNS runs (warm page cache), plus a few cold
#     starts (the store file's pages dropped first);
#   - peak memory: VmHWM of the TUI process (/proc/PID/status) after moving around
#     (j x 500, G, gg, /refund Enter, Esc). The TUI also runs the worker (it takes
#     the worker lease when no other braid runs on the store: on a demo workspace
#     that is the simulated customers), so that is part of its memory;
#   - key to screen, coarse: `j` sent with tmux send-keys until the queue's
#     position counter changes, as seen by capture-pane (tmux's own round trip
#     included: a few ms; benches/tui.rs times the UI work itself).
#
#   scripts/bench-tui.sh                        # 1,000,000 messages, 10 runs
#   BRAID_BENCH_MESSAGES=100000 RUNS=5 scripts/bench-tui.sh
#   SKIP_BUILD=1 scripts/bench-tui.sh
#
# The workspace is built once with `braid demo --no-tui` into
# target/bench-data/demo-m{N}-s{SEED}/ and reused (benches/tui.rs shares it).
# Needs tmux and python3 (for posix_fadvise); nothing else.
set -euo pipefail

N="${BRAID_BENCH_MESSAGES:-1000000}"
N="${N//[,_]/}"
SEED="${BRAID_BENCH_SEED:-42}"
RUNS="${RUNS:-10}"
COLD_RUNS="${COLD_RUNS:-3}"
KEY_SAMPLES="${KEY_SAMPLES:-50}"
READY_TIMEOUT="${READY_TIMEOUT:-60}" # seconds

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${BRAID_BIN:-$ROOT/target/release/braid}"
DIR="$ROOT/target/bench-data/demo-m$N-s$SEED"
DB="$DIR/braid.sqlite3"
SOCK="braid-bench-$$"          # a private tmux server: other tmux sessions are left alone
SESSION="bench"
WORK="$(mktemp -d)"

say() { printf 'bench-tui: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
tm() { tmux -L "$SOCK" "$@"; }
now_us() { local t="${EPOCHREALTIME/./}"; echo "$t"; }

cleanup() {
  tm kill-server >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

command -v tmux >/dev/null || die "needs tmux"
command -v python3 >/dev/null || die "needs python3"

# --------------------------------------------------------------------------- build
if [ -z "${SKIP_BUILD:-}" ] && [ -z "${BRAID_BIN:-}" ]; then
  say "cargo build --release"
  (cd "$ROOT" && cargo build --release --quiet)
fi
[ -x "$BIN" ] || die "no binary at $BIN"

# ----------------------------------------------------------------------- workspace
if [ ! -f "$DIR/complete" ]; then
  rm -rf "$DIR"
  mkdir -p "$DIR"
  say "building the workspace: $N messages, $((N / 10)) contacts, seed $SEED (once; reused afterwards)"
  start=$(now_us)
  "$BIN" demo --no-tui --messages "$N" --seed "$SEED" --data-dir "$DIR" 2>&1 |
    grep -v '^T ' | tail -n 1 >&2
  end=$(now_us)
  secs=$(( (end - start) / 1000000 ))
  echo "built by scripts/bench-tui.sh (braid demo --no-tui) in ${secs} s" >"$DIR/complete"
else
  say "reusing $DIR ($(cat "$DIR/complete"))"
fi
STORE_BYTES=0
for f in "$DB" "$DB-wal"; do
  [ -f "$f" ] && STORE_BYTES=$(( STORE_BYTES + $(stat -c %s "$f") ))
done

# ------------------------------------------------------------------------- helpers
# No user config: defaults, as on a fresh machine.
mkdir -p "$WORK/config"
LAUNCH="exec env -u BRAID_CONFIG -u BRAID_DATA_DIR XDG_CONFIG_HOME='$WORK/config' USER=alice '$BIN' --data-dir '$DIR'"

screen() { tm capture-pane -p -t "$SESSION" 2>/dev/null || true; }

# The queue is on screen: the status line's mode and the queue pane's first row
# (its title counts "open · 1/N" once rows are loaded; ▌ marks the selected row).
queue_visible() {
  local s="$1"
  [[ "$s" == *NORMAL* && "$s" == *"▌"* && "$s" =~ open\ ·\ 1/[0-9] ]]
}

# Wait until `pred SCREEN` holds; prints the screen. Fails after $2 seconds.
wait_for() {
  local pred="$1" timeout="${2:-$READY_TIMEOUT}" s
  local deadline=$(( $(now_us) + timeout * 1000000 ))
  while :; do
    s="$(screen)"
    if "$pred" "$s"; then
      printf '%s' "$s"
      return 0
    fi
    if (( $(now_us) > deadline )); then
      say "timed out; the screen was:"
      printf '%s\n' "$s" >&2
      return 1
    fi
    sleep 0.002
  done
}

pane_pid() { tm display-message -p -t "$SESSION" '#{pane_pid}'; }

# Quit braid and wait for the process to be gone (it releases the worker lease).
quit() {
  local pid="$1" i
  tm send-keys -t "$SESSION" q 2>/dev/null || true
  local t0; t0=$(now_us)
  for i in $(seq 1 1500); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.01
  done
  ms_between "$t0" "$(now_us)" >>"$WORK/quit"
  if kill -0 "$pid" 2>/dev/null; then
    say "braid (pid $pid) did not quit on q; ending it"
    kill "$pid" 2>/dev/null || true
    sleep 0.2
  fi
  tm kill-session -t "$SESSION" 2>/dev/null || true
}

drop_cache() {
  python3 - "$DB" <<'EOF'
import os, sys
for suffix in ("", "-wal", "-shm"):
    p = sys.argv[1] + suffix
    if os.path.exists(p):
        fd = os.open(p, os.O_RDONLY)
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
EOF
}

# Launch braid; sets LAUNCH_US, READY_US (queue visible) and PID.
launch() {
  LAUNCH_US=$(now_us)
  tm new-session -d -s "$SESSION" -x 160 -y 45 "$LAUNCH"
  wait_for queue_visible >/dev/null
  READY_US=$(now_us)
  PID=$(pane_pid)
}

ms_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f\n", (b - a) / 1000 }'; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print "n/a"; else if (NR%2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }
pct() { sort -n | awk -v q="$1" '{a[NR]=$1} END {if (NR==0) {print "n/a"; exit} r=int(q*NR+0.999999); if (r<1) r=1; if (r>NR) r=NR; print a[r]}'; }
status_kb() { awk -v k="$2:" '$1==k {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# A private tmux server kept alive by an idle session, so each launch is one client call.
tm new-session -d -s keep -x 80 -y 24 "sleep 100000"

# --------------------------------------------------------------------- first frame
say "start to first frame: 1 warm-up + $RUNS warm runs + $COLD_RUNS cold runs"
launch
quit "$PID"
: >"$WORK/warm"
for i in $(seq 1 "$RUNS"); do
  launch
  ms_between "$LAUNCH_US" "$READY_US" >>"$WORK/warm"
  echo $(( $(status_kb "$PID" VmHWM) / 1024 )) >>"$WORK/hwm_start"
  quit "$PID"
done
: >"$WORK/cold"
for i in $(seq 1 "$COLD_RUNS"); do
  drop_cache
  launch
  ms_between "$LAUNCH_US" "$READY_US" >>"$WORK/cold"
  quit "$PID"
done

# ------------------------------------------------------------- memory after moving
say "peak memory after moving around (j x 500, G, gg, /refund Enter, Esc)"
launch
# The queue's position counter "open · ROW/TOTAL" (the title of the queue pane).
pos() { grep -oE 'open · [0-9]+/[0-9]+' <<<"$1" | head -n 1 || true; }
row_of() { local p; p="$(pos "$1")"; p="${p#open · }"; echo "${p%/*}"; }
total_of() { local p; p="$(pos "$1")"; echo "${p#*/}"; }
# The simulated customers keep writing: a new conversation on top moves the selected row
# down by one, so the waits below accept a row or two of slack.
at_least() { local r; r="$(row_of "$1")"; [[ -n "$r" ]] && (( r >= WANT )); }
near_top() { local r; r="$(row_of "$1")"; [[ -n "$r" ]] && (( r <= 3 )); }
at_bottom() {
  local r t; r="$(row_of "$1")"; t="$(total_of "$1")"
  [[ -n "$r" && -n "$t" ]] && (( r + 2 >= t && r > 600 ))
}
# j x 500, in chunks (as fast as tmux delivers them), then wait for row 501.
for _ in $(seq 1 10); do
  tm send-keys -t "$SESSION" $(printf 'j %.0s' $(seq 1 50))
done
# The loop drains a burst of keys before the store answers: all 500 must count.
if WANT=501 wait_for at_least 30 >/dev/null; then
  REACHED="$(row_of "$(screen)")"
else
  REACHED="$(row_of "$(screen)") (timed out)"
fi
tm send-keys -t "$SESSION" G
wait_for at_bottom 30 >/dev/null
tm send-keys -t "$SESSION" g g
wait_for near_top 30 >/dev/null
tm send-keys -t "$SESSION" / r e f u n d Enter
in_search() { [[ "$1" == *"search: refund · 1/"* ]]; }
wait_for in_search 30 >/dev/null
tm send-keys -t "$SESSION" Escape
wait_for near_top 30 >/dev/null
sleep 1 # let the timeline and profile of the selected row arrive
HWM_KB=$(status_kb "$PID" VmHWM)
RSS_KB=$(status_kb "$PID" VmRSS)
THREADS=$(status_kb "$PID" Threads)
WORKER=$(screen | grep -oE 'worker: [a-z]+' | head -n 1 || true)

# ------------------------------------------------------------ key to screen (coarse)
say "key to screen, coarse: $KEY_SAMPLES x j through tmux"
: >"$WORK/keys"
for i in $(seq 1 "$KEY_SAMPLES"); do
  before="$(pos "$(screen)")"
  t0=$(now_us)
  tm send-keys -t "$SESSION" j
  moved() { local p; p="$(pos "$1")"; [[ -n "$p" && "$p" != "$before" ]]; }
  wait_for moved 10 >/dev/null
  t1=$(now_us)
  ms_between "$t0" "$t1" >>"$WORK/keys"
done
# The same round trip with nothing to wait for: capture-pane's own cost.
: >"$WORK/capture"
for i in $(seq 1 20); do
  t0=$(now_us); screen >/dev/null; t1=$(now_us)
  ms_between "$t0" "$t1" >>"$WORK/capture"
done
HWM_KB_END=$(status_kb "$PID" VmHWM)
quit "$PID"

# ------------------------------------------------------------------------- results
warm_med=$(median <"$WORK/warm")
warm_p95=$(pct 0.95 <"$WORK/warm")
cold_med=$(median <"$WORK/cold")
hwm_start=$(median <"$WORK/hwm_start")
key_med=$(median <"$WORK/keys")
key_p95=$(pct 0.95 <"$WORK/keys")
cap_med=$(median <"$WORK/capture")
hwm_mb=$(( HWM_KB_END / 1024 ))
ok() { if [ "$1" = 1 ]; then echo "met"; else echo "MISSED"; fi; }

echo
echo "braid TUI, real binary in tmux 160x45: $N messages, store $(( STORE_BYTES / 1000000 )) MB, $(nproc) cores"
printf '%-58s %12s %12s  %s\n' "" "median" "p95/max" "target"
printf '%-58s %9s ms %9s ms  <= 150 ms: %s\n' "start -> queue on screen (warm, $RUNS runs: $(tr '\n' ' ' <"$WORK/warm"))" \
  "$warm_med" "$warm_p95" "$(ok "$(awk -v m="$warm_med" 'BEGIN { print (m <= 150) }')")"
printf '%-58s %9s ms %9s ms\n' "start -> queue on screen (cold file cache, $COLD_RUNS runs)" \
  "$cold_med" "$(pct 1 <"$WORK/cold")"
printf '%-58s %9s MB\n' "VmHWM right after the first frame (median)" "$hwm_start"
printf '%-58s %9s MB %12s  <= 60 MB: %s\n' "PEAK RSS (VmHWM) after j x500, G, gg, /refund, Esc, 50 j" \
  "$hwm_mb" "" "$(ok $(( hwm_mb <= 60 )))"
printf '%-58s %9s MB\n' "  (after the moves, before the 50 j: VmHWM $(( HWM_KB / 1024 )) MB) VmRSS now" "$(( RSS_KB / 1024 ))"
printf '%-58s %9s\n' "  threads; worker role" "$THREADS; ${WORKER:-?}"
printf '%-58s %9s ms %9s ms  (coarse; includes tmux)\n' "key j -> screen changed, via send-keys/capture-pane" "$key_med" "$key_p95"
printf '%-58s %9s ms\n' "  one capture-pane round trip (the resolution)" "$cap_med"
printf '%-58s %9s\n' "j x 500 sent in 10 quick send-keys: row reached (want 501)" "$REACHED"
printf '%-58s %9s ms %9s ms\n' "q -> process gone: $(tr "\n" " " <"$WORK/quit")" "$(median <"$WORK/quit")" "$(pct 1 <"$WORK/quit")"
