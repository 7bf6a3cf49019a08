#!/usr/bin/env bash
# The workspace server as a separate process, measured over its socket (benches/server.rs;
# BENCHMARKS.md, "The workspace server", explains every figure):
#
#   scripts/bench-server.sh            # 1,000,000 messages, 20 starts, a 60 s load run
#   scripts/bench-server.sh --small    # 10,000 messages, a 10 s load run (what .ci/run runs)
#   scripts/bench-server.sh --messages 200000 --seconds 30 --agents 50 --visitors 1000
#
# Builds braid and the benchmark in release (`cargo bench` builds the `braid` binary it
# starts), then runs it. The demo workspace is built once into target/bench-data/ and reused;
# each run copies it to a scratch directory under the temp dir, removed at the end. Exits
# non-zero on any error (an error answer, a lost connection, a missed push) or a missing
# figure, never because a figure is slow. Output is also kept in target/bench-server.txt.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
locked=()
if [ -f Cargo.lock ]; then locked=(--locked); fi
mkdir -p target
cargo bench "${locked[@]}" --bench server -- "$@" 2>&1 | tee target/bench-server.txt
exit "${PIPESTATUS[0]}"
