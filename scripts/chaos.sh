#!/usr/bin/env bash
# A long Jepsen-style run: the nemesis test of tests/nemesis.rs (concurrent writes and
# strong reads through the current members while nodes are killed, paused, partitioned,
# the whole cluster crashed, nodes added and removed, the leader included, between 3
# and 5 voters), checked for linearizability, convergence and crashes; then
# whole-cluster SIGKILL rounds in the middle of a write load, checking that no
# acknowledged write is lost. The same file's compare-and-set run (an ADD counter and
# conditional puts under the same faults) and its transaction run (transfers by
# TransactWriteItems through leader kills and whole-cluster crashes, readers checking
# the total) run as long. Everything runs on loopback, in temp dirs, on free ports.
#
# Usage: scripts/chaos.sh [--duration SECONDS] [--crash-rounds N] [--seed N]
#   --duration      how long the nemesis workload runs (default 300)
#   --crash-rounds  whole-cluster crash rounds (default 20)
#   --seed          nemesis seed (default: random); a failing seed can be replayed
set -euo pipefail
cd "$(dirname "$0")/.."
duration=300
rounds=20
seed=$RANDOM$RANDOM
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --crash-rounds) rounds=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
echo "chaos: nemesis for ${duration}s (seed $seed), then $rounds whole-cluster crash rounds"
log=$(mktemp -t chaos.XXXXXX.log)
status=0
NEMESIS_SECS=$duration NEMESIS_SEED=$seed CRASH_ROUNDS=$rounds \
  cargo test --release --test nemesis -- --nocapture --test-threads 1 >"$log" 2>&1 || status=$?
echo
echo "== report"
# --nocapture prints a test's first report line right after "test <name> ... ".
sed -E 's/^test [a-z_0-9]+ \.\.\. //' "$log" |
  grep -E "^(nemesis run|membership change|final membership|crash round|compare-and-set|transactions round|LINEARIZABLE|NOT LINEARIZABLE|UNKNOWN|INVALID HISTORY|  [0-9]+ keys|history saved)" || true
grep -E "^test result" "$log" || true
if [ "$status" -ne 0 ]; then
  echo
  echo "== failures (full output in $log)"
  grep -E "panicked|assert" -A12 "$log" | head -80
  exit "$status"
fi
echo "clean verdict; full output in $log"
