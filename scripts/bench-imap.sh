#!/usr/bin/env bash
# IMAP initial sync, braid vs mbsync, on the same mailbox of a REAL Dovecot on loopback:
#   - the benchmarks' deterministic Maildir (examples/gen_maildir.rs: threads, multipart, HTML,
#     attachments, non-ASCII) is delivered into the `bench` user's INBOX once;
#   - then, RUNS times in alternation: `braid sync --once` into a fresh data dir (fetch, MIME
#     parse, identity, threading, FTS index, SQLite commit), and `mbsync` (isync) pulling the
#     same INBOX into a fresh local Maildir (fetch and write files);
#   - prints each tool's median / min / max wall time, messages/s, and braid/mbsync as a ratio.
# Both talk plain IMAP on 127.0.0.1:10143 (no TLS: the sync engines, not the ciphers).
#
#   scripts/bench-imap.sh                 # 10,000 messages, 3 runs each
#   N=100000 RUNS=3 scripts/bench-imap.sh
#   SKIP_BUILD=1 scripts/bench-imap.sh
#   BENCH_JSON=FILE also writes the raw samples (scripts/bench.py reads them)
#
# Installs isync (mbsync) and the mail servers' packages when missing (root, apt-get).
# Its own server dir (target/bench-mail), so the live tests' mailboxes are left alone.
set -euo pipefail

N="${N:-10000}"
N="${N//[,_]/}"
RUNS="${RUNS:-3}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${BRAID_BIN:-$ROOT/target/release/braid}"
MAIL_DIR="${BRAID_BENCH_MAIL_DIR:-$ROOT/target/bench-mail}"
DATA="$ROOT/target/bench-data"
SRC="$DATA/maildir-v2-$N"  # v2: the generator with product names, order numbers, work addresses
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

say() { printf 'bench-imap: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
now_ms() { local t="${EPOCHREALTIME/./}"; echo $(( t / 1000 )); }

if ! command -v mbsync >/dev/null; then
  say "installing isync (mbsync)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq isync >/dev/null
fi
if [ -z "${SKIP_BUILD:-}" ] && [ -z "${BRAID_BIN:-}" ]; then
  say "cargo build --release (braid, gen_maildir)"
  (cd "$ROOT" && cargo build --release --quiet --bin braid --example gen_maildir)
fi
[ -x "$BIN" ] || die "no binary at $BIN"

# Ports of its own, so it runs beside the live tests' servers.
export BRAID_IMAP_PORT="${BENCH_IMAP_PORT:-11143}" BRAID_IMAPS_PORT="${BENCH_IMAPS_PORT:-11993}"
export BRAID_SMTP_PORT="${BENCH_SMTP_PORT:-11025}" BRAID_SUBMISSION_PORT="${BENCH_SUBMISSION_PORT:-11587}"
mkdir -p "$MAIL_DIR" "$DATA"
chmod 755 "$MAIL_DIR"
# Stopped again on the way out: a Dovecot left running holds the ports, and the next run from
# another checkout (or CI on the same machine) could not start its own.
trap 'rm -rf "$WORK"; "$ROOT/scripts/mail-servers.sh" stop "$MAIL_DIR" >/dev/null 2>&1 || true' EXIT
"$ROOT/scripts/mail-servers.sh" start "$MAIL_DIR" >&2
set -a
# shellcheck disable=SC1091
. "$MAIL_DIR/env"
set +a

# ---------------------------------------------------------------- the mailbox, once
if [ ! -f "$SRC/complete" ]; then
  rm -rf "$SRC"
  "$ROOT/target/release/examples/gen_maildir" "$SRC" "$N" >&2
  touch "$SRC/complete"
fi
INBOX_MARK="$MAIL_DIR/bench-inbox-v2-$N"
if [ ! -f "$INBOX_MARK" ]; then
  say "delivering $N messages into bench's INBOX"
  rm -rf "$MAIL_DIR/mail/bench/Maildir"
  "$ROOT/scripts/mail-servers.sh" stop-imap "$MAIL_DIR" >&2
  "$ROOT/scripts/mail-servers.sh" start "$MAIL_DIR" >&2
  # Every message, ours (.Sent) included: one folder of N.
  "$ROOT/scripts/mail-servers.sh" deliver bench "$SRC/cur" "$MAIL_DIR" >&2
  [ -d "$SRC/new" ] && "$ROOT/scripts/mail-servers.sh" deliver bench "$SRC/new" "$MAIL_DIR" >&2
  [ -d "$SRC/.Sent/cur" ] && "$ROOT/scripts/mail-servers.sh" deliver bench "$SRC/.Sent/cur" "$MAIL_DIR" >&2
  rm -f "$MAIL_DIR"/bench-inbox-*
  touch "$INBOX_MARK"
fi
TOTAL=$(find "$MAIL_DIR/mail/bench/Maildir/cur" "$MAIL_DIR/mail/bench/Maildir/new" -type f | wc -l)
BYTES=$(du -sb "$MAIL_DIR/mail/bench/Maildir" | cut -f1)

# ---------------------------------------------------------------- the two clients
cat >"$WORK/braid.toml" <<TOML
agent = "bench"
[webchat]
enabled = false
[[email]]
name = "bench"
address = "bench@example.com"
username = "bench"
password_command = "printf bench-pass"
imap_host = "127.0.0.1"
imap_port = $BRAID_IMAP_PORT
imap_security = "none"
smtp_host = "127.0.0.1"
smtp_port = $BRAID_SMTP_PORT
smtp_security = "none"
smtp_auth = false
folders = ["INBOX"]
sent_folder = ""
TOML
chmod 600 "$WORK/braid.toml"

cat >"$WORK/mbsyncrc" <<RC
IMAPAccount bench
Host 127.0.0.1
Port $BRAID_IMAP_PORT
User bench
Pass bench-pass
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account bench

MaildirStore local
Path $WORK/mbsync/
Inbox $WORK/mbsync/INBOX

Channel bench
Far :remote:
Near :local:
Patterns INBOX
Create Near
Sync Pull
SyncState *
RC

# The same without an fsync per message (mbsync's default is to fsync every file it writes;
# braid's store commits, and syncs, once per batch of up to 250 messages).
{ echo "FSync no"; cat "$WORK/mbsyncrc"; } >"$WORK/mbsyncrc-nofsync"

run_braid() {
  rm -rf "$WORK/braid-data"; mkdir -p "$WORK/braid-data"
  local t0 t1; t0=$(now_ms)
  env -u BRAID_CONFIG "$BIN" --config "$WORK/braid.toml" --data-dir "$WORK/braid-data" sync --once --json >"$WORK/braid.json"
  t1=$(now_ms)
  local got; got=$(sqlite3 "$WORK/braid-data/braid.sqlite3" "SELECT count(*) FROM messages" 2>/dev/null || python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from messages').fetchone()[0])" "$WORK/braid-data/braid.sqlite3")
  [ "$got" = "$TOTAL" ] || die "braid stored $got of $TOTAL"
  echo $(( t1 - t0 ))
}

run_mbsync() {
  local rc=${1:-$WORK/mbsyncrc}
  rm -rf "$WORK/mbsync"; mkdir -p "$WORK/mbsync"
  local t0 t1; t0=$(now_ms)
  mbsync -q -c "$rc" -a >"$WORK/mbsync.log" 2>&1 || { cat "$WORK/mbsync.log" >&2; die "mbsync failed"; }
  t1=$(now_ms)
  local got; got=$(find "$WORK/mbsync/INBOX/cur" "$WORK/mbsync/INBOX/new" -type f | wc -l)
  [ "$got" = "$TOTAL" ] || die "mbsync wrote $got of $TOTAL"
  echo $(( t1 - t0 ))
}

say "$TOTAL messages ($(( BYTES / 1000000 )) MB) in bench's INBOX; $RUNS runs each, alternating"
: >"$WORK/b"; : >"$WORK/m"; : >"$WORK/n"
for i in $(seq 1 "$RUNS"); do
  b=$(run_braid); echo "$b" >>"$WORK/b"
  m=$(run_mbsync); echo "$m" >>"$WORK/m"
  n=$(run_mbsync "$WORK/mbsyncrc-nofsync"); echo "$n" >>"$WORK/n"
  say "run $i: braid ${b} ms, mbsync ${m} ms, mbsync without fsync ${n} ms"
done

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
bm=$(median <"$WORK/b"); mm=$(median <"$WORK/m"); nm=$(median <"$WORK/n")
row() {
  local name=$1 f=$2 med=$3
  printf '%-44s %9s ms %9s ms %9s ms %10.0f msg/s\n' "$name" "$med" "$(sort -n "$f" | head -n1)" \
    "$(sort -n "$f" | tail -n1)" "$(awk -v n="$TOTAL" -v t="$med" 'BEGIN { print n * 1000 / t }')"
}
echo
echo "IMAP initial sync of $TOTAL messages ($(( BYTES / 1000000 )) MB) from Dovecot on loopback, $(nproc) cores, $RUNS runs"
printf '%-44s %12s %12s %12s %16s\n' "" "median" "min" "max" "rate (median)"
row "braid sync --once (parse + index + store)" "$WORK/b" "$bm"
row "mbsync -a (files into a Maildir)" "$WORK/m" "$mm"
row "mbsync -a, FSync no" "$WORK/n" "$nm"
awk -v b="$bm" -v m="$mm" -v n="$nm" 'BEGIN { printf "braid / mbsync wall time: %.2fx (target <= 1.0x); braid / mbsync without fsync: %.2fx\n", b / m, b / n }'
# Raw samples for scripts/bench.py.
if [ -n "${BENCH_JSON:-}" ]; then
  arr() { paste -sd, "$1"; }
  printf '{"messages": %s, "bytes": %s, "braid_ms": [%s], "mbsync_ms": [%s], "mbsync_nofsync_ms": [%s]}\n' \
    "$TOTAL" "$BYTES" "$(arr "$WORK/b")" "$(arr "$WORK/m")" "$(arr "$WORK/n")" >"$BENCH_JSON"
fi
