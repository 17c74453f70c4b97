#!/usr/bin/env bash
# Failover as a client sees it: a 3-node cluster (supervisor, free ports, temp dir);
# each round SIGKILLs the leader (`cluster kill`) and at once runs one
# `raft-nosql put-item` (which retries on its own until a new leader acknowledges), and
# separately a `curl -L` loop; prints the time from the kill to the first acknowledged
# write for both, then restarts the killed node and waits for a leader again.
#
# Usage: scripts/failover.sh [--rounds N] [--bin PATH]
#   --rounds  kills to measure (default 5)
#   --bin     raft-nosql binary (default target/release/raft-nosql if built, else debug)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=5
. scripts/lib.sh
bin=$(default_bin)
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
check_bin
temp_cluster
wait_leader
"$bin" create-table --config "$cfg" --table-name kvs --partition-key-name k >/dev/null

# One kill: $1 = how to write ("cli" or "curl"); prints seconds to the first ack.
kill_and_write() {
  wait_leader
  local old=$leader t
  # A survivor to send curl's writes to (the CLI finds its own way).
  local via=127.0.0.1:${ports[$(( (old + 1) % 3 ))]}
  t=$(now)
  "$bin" cluster kill "$old" --config "$cfg" >/dev/null
  if [ "$1" = cli ]; then
    "$bin" put-item --config "$cfg" --table-name kvs --item-data '{"k":"x","v":1}' >/dev/null
  else
    until curl -sf -L --max-time 2 -X PUT "$via/tables/kvs/items" -d '{"k":"x","v":1}' >/dev/null; do
      sleep 0.02 # poll interval, until the write is acknowledged
    done
  fi
  since "$t"
  "$bin" cluster restart "$old" --config "$cfg" >/dev/null
}
cli=() curl=()
for r in $(seq 1 "$rounds"); do
  cli+=("$(kill_and_write cli)")
  curl+=("$(kill_and_write curl)")
  echo "round $r: put-item ${cli[-1]} s, curl -L loop ${curl[-1]} s"
done
echo "put-item: ${cli[*]} s"
echo "curl -L:  ${curl[*]} s"
