#!/usr/bin/env bash
# braid side by side with notmuch, neomutt and mbsync on the same generated Maildir
# (BENCHMARKS.md explains every figure). On a fresh machine:
#
#   scripts/bench.sh                                  # 10k, 100k and 1M messages (about an hour)
#   scripts/bench.sh --sizes 10000 --runs 1 --search-reps 1   # the small version .ci/run runs
#   scripts/bench.sh --sizes 100000 --only search,open
#
# It installs the peers from Debian (notmuch, neomutt, isync, Dovecot, tmux; needs root for
# apt-get), matplotlib for the chart in a venv (target/bench-venv), builds braid, then runs
# scripts/bench.py, which writes target/bench-results/{results.json,results.md,chart.png}.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { printf 'bench: %s\n' "$*" >&2; }

need=()
for pair in notmuch:notmuch neomutt:neomutt mbsync:isync tmux:tmux dovecot:dovecot-imapd; do
  command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

VENV="$ROOT/target/bench-venv"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import matplotlib" 2>/dev/null; then
  say "python venv with matplotlib (for the chart) in $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q matplotlib
fi

if [ -z "${SKIP_BUILD:-}" ]; then
  say "cargo build --release (braid, gen_maildir)"
  (cd "$ROOT" && cargo build --release --quiet --bin braid --example gen_maildir)
fi
exec "$VENV/bin/python" "$ROOT/scripts/bench.py" "$@"
