#!/usr/bin/env bash
# Disk use per node next to its live data, snapshot build and install times, and write
# throughput while snapshots are built, as a user would see them: a 3-node cluster
# (supervisor, free ports, temp dir), `raft-nosql bench` writing N new items, then
# `cluster du` once every node has applied everything and fjall has compacted. Finally
# one follower's data is wiped (stop-node, rm, start-node) and the time until it has
# installed a snapshot of the whole state and caught up is measured.
#
# Usage: scripts/bench-disk.sh [--items N] [--value-size B] [--clients C] [--bin PATH]
#   --items       items written (default 100000)
#   --value-size  bytes per item value (default 1000)
#   --clients     concurrent bench clients (default 64)
#   --bin         raft-nosql binary (default target/release/raft-nosql if built, else debug)
set -euo pipefail
cd "$(dirname "$0")/.."
items=100000
size=1000
clients=64
. scripts/lib.sh
bin=$(default_bin)
while [ $# -gt 0 ]; do
  case "$1" in
    --items) items=$2; shift 2 ;;
    --value-size) size=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
check_bin
temp_cluster
wait_leader
targets="127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}"

echo "== writing $items items of $size B with $clients clients"
report=$("$bin" bench --config "$cfg" --target "$targets" --workload write --clients "$clients" \
  --ops "$items" --value-size "$size" --keys 1000000000000 --table disk --json)
python3 - "$report" <<'EOF'
import json, sys
r = json.loads(sys.argv[1])
l = r["write"]["latency_us"]
print(f"throughput {r['throughput_ops_s']:.0f} writes/s, p50 {l['p50'] / 1000:.1f} ms, "
      f"p99 {l['p99'] / 1000:.1f} ms, errors {r['errors']}")
EOF

# Snapshots built during the run, on each node (event snapshot_built, with ms).
for i in 0 1 2; do
  python3 - "$dir/data/node$i/node.log" "$i" <<'EOF'
import json, sys
ms = [json.loads(l)["ms"] for l in open(sys.argv[1]) if '"snapshot_built"' in l and '"ms"' in l]
if ms:
    print(f"node {sys.argv[2]}: {len(ms)} snapshots built while writing, build time min {min(ms)} / max {max(ms)} ms")
EOF
done

echo "== waiting until every node has applied everything and disk use settles"
target=$(field "$(status "$leader")" applied)
for _ in $(seq 1 1200); do
  ok=1
  for i in 0 1 2; do
    a=$(field "$(status "$i")" applied)
    [ -n "$a" ] && [ "$a" -ge "$target" ] || ok=0
  done
  [ "$ok" = 1 ] && break
  sleep 0.1 # poll interval, bounded by the loop count
done
# Compaction runs in fjall's background threads: give it up to 60 s to bring the
# ratio down (polled; stops as soon as every node is at or below 2x).
for _ in $(seq 1 120); do
  worst=$(for i in 0 1 2; do status "$i"; echo; done | python3 -c '
import json, sys
r = [json.loads(l)["disk"] for l in sys.stdin if l.strip()]
print(max(d["used_bytes"] / max(d["live_bytes"], 1) for d in r))')
  python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) <= 2.0 else 1)" "$worst" && break
  sleep 0.5 # poll interval, bounded by the loop count
done
"$bin" cluster du --config "$cfg"

echo "== snapshot install: node $(( (leader + 1) % 3 )) wiped and restarted"
lag=$(( (leader + 1) % 3 ))
"$bin" cluster stop-node "$lag" --config "$cfg" >/dev/null
rm -rf "$dir/data/node$lag/db" "$dir/data/node$lag/snapshots"
target=$(field "$(status "$leader")" applied)
t=$(now)
"$bin" cluster start-node "$lag" --config "$cfg" >/dev/null
caught=""
for _ in $(seq 1 6000); do
  a=$(field "$(status "$lag")" applied)
  if [ -n "$a" ] && [ "$a" -ge "$target" ]; then caught=$(since "$t"); break; fi
  sleep 0.1 # poll interval, bounded by the loop count
done
[ -n "$caught" ] || { echo "node $lag did not catch up within 600 s" >&2; exit 1; }
python3 - "$dir/data/node$lag/node.log" <<'EOF'
import json, sys
for l in open(sys.argv[1]):
    if '"snapshot_installed"' in l:
        e = json.loads(l)
        print(f"snapshot of {e['size'] / 1e6:.1f} MB (index {e['index']}) installed in {e.get('ms', '?')} ms")
EOF
echo "node $lag caught up to index $target in $caught s after start-node"
"$bin" cluster du --config "$cfg"
