#!/usr/bin/env bash
# The seams of the house (shared/DESIGN.md, "The house" and conventions 9 and 10), checked:
#
#   (a) no SQL and no `rusqlite` outside src/store/: a file elsewhere under src/ that mentions
#       rusqlite, calls the driver (execute(, execute_batch(, query_row(, query_map(, prepare(,
#       prepare_cached(, .query() or holds a SQL statement (SELECT ... FROM, INSERT INTO,
#       UPDATE ... SET, DELETE FROM, PRAGMA, SAVEPOINT, BEGIN IMMEDIATE) fails the check;
#   (b) no channel imports config.rs: `crate::config` under src/channels/ fails the check;
#   (c) the clients (src/tui/, src/cli/) import nothing from store, worker, feed or a channel.
#       Reported only (exit 0) unless --strict: the clients are moving onto src/api/.
#       Allowed: the server-side commands in src/cli/ (import, sync, demo, server, attach,
#       connect), which run or start the server and may open the store (SERVER_SIDE below).
#
# Comment lines are not code: only the mention of rusqlite is looked for in them. Each finding
# is printed as FILE:LINE: what is wrong: the line. Exit 1 when (a) or (b) (or, with --strict,
# (c)) found something; 2 on a usage error.
#
# Usage: scripts/seams.sh [--strict] [ROOT]      (ROOT: the repository, default: this one)
set -euo pipefail

strict=0
root=""
for arg in "$@"; do
    case "$arg" in
        --strict) strict=1 ;;
        -h | --help)
            sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        -*)
            echo "seams.sh: unknown option '$arg' (use --strict, or --help)" >&2
            exit 2
            ;;
        *) root="$arg" ;;
    esac
done
if [ -z "$root" ]; then
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fi
if [ ! -d "$root/src" ]; then
    echo "seams.sh: no src/ in '$root' (give the repository's root)" >&2
    exit 2
fi
cd "$root"

# src/cli/ files that are server-side commands, not clients (exempt from (c)).
SERVER_SIDE='^src/cli/(import|sync|demo|server|attach|connect)[.]rs$'

# One awk pass over every Rust file under src/. Findings go to stdout tagged "fatal" or "report".
findings="$(
    find src -name '*.rs' -type f | LC_ALL=C sort | xargs awk -v strict="$strict" -v server_side="$SERVER_SIDE" '
    FNR == 1 { in_use = 0 }
    {
        file = FILENAME
        line = $0
        code = line
        comment = (line ~ /^[[:space:]]*\/\//)
        if (comment) code = ""
        # (a) SQL and the driver outside the store.
        if (file !~ /^src\/store\//) {
            if (line ~ /rusqlite/) {
                emit("fatal", "rusqlite outside src/store/ (the store owns the driver; add a store method or use store::Tx)")
            } else if (code ~ /(^|[^A-Za-z0-9_])(execute|execute_batch|query_row|query_map|prepare|prepare_cached)\(/ || code ~ /\.query\(/) {
                emit("fatal", "a database call outside src/store/ (move it into a store method)")
            } else if (code ~ /(^|[^A-Za-z0-9_])(SELECT[[:space:]].*[[:space:]]FROM|INSERT[[:space:]]+(OR[[:space:]]+[A-Z]+[[:space:]]+)?INTO|UPDATE[[:space:]]+[A-Za-z_]+[[:space:]]+SET|DELETE[[:space:]]+FROM|PRAGMA[[:space:]]+[a-z_]+|SAVEPOINT|BEGIN[[:space:]]+(IMMEDIATE|DEFERRED|EXCLUSIVE))([^A-Za-z0-9_]|$)/) {
                emit("fatal", "SQL outside src/store/ (move it into a store method; a savepoint is store::Tx::savepoint)")
            }
        }
        # (b) channels import nothing from config.rs; (c) clients nothing below the api.
        if (file ~ /^src\/channels\//) {
            check_imports("config", "fatal", "a channel imports crate::config (its config type lives in the channel; shared parsers in crate::units)")
        }
        if (file ~ /^src\/(tui|cli)\// && file !~ server_side) {
            check_imports("store|worker|feed|channels", strict ? "fatal" : "report", "a client imports below the api (use crate::api)")
        }
    }
    # A path `crate::MOD`, or MOD inside a grouped `use crate::{...}` (which may span lines).
    function check_imports(mods, level, what,    re, grouped) {
        if (code == "") return
        re = "crate::(" mods ")([^A-Za-z0-9_]|$)"
        if (code ~ re) {
            emit(level, what)
            if (code ~ /;[[:space:]]*$/) in_use = 0
            return
        }
        if (code ~ /^[[:space:]]*(pub(\([a-z:]+\))?[[:space:]]+)?use[[:space:]]+crate::\{/) {
            in_use = 1
            grouped = code
            sub(/.*use[[:space:]]+crate::\{/, "", grouped)
        } else if (in_use) {
            grouped = code
        } else {
            return
        }
        if (grouped ~ ("(^|[{,[:space:]])(" mods ")(::|[,}[:space:]]|$)")) emit(level, what)
        if (code ~ /;[[:space:]]*$/) in_use = 0
    }
    function emit(level, what,    shown) {
        shown = line
        gsub(/^[[:space:]]+/, "", shown)
        printf "%s\t%s:%d: %s: %s\n", level, file, FNR, what, shown
    }
    '
)"

fatal=0
reports=0
while IFS=$'\t' read -r level text; do
    [ -z "$level" ] && continue
    if [ "$level" = fatal ]; then
        fatal=$((fatal + 1))
        echo "$text"
    else
        reports=$((reports + 1))
        echo "note: $text"
    fi
done <<<"$findings"

if [ "$reports" -gt 0 ]; then
    echo "seams: $reports client import(s) below the api, reported only (--strict makes them fatal)" >&2
fi
if [ "$fatal" -gt 0 ]; then
    echo "seams: $fatal finding(s): see DESIGN.md, conventions 9 and 10" >&2
    exit 1
fi
echo "seams: ok" >&2
