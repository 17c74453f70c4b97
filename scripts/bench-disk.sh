#!/usr/bin/env bash
# Disk use per node next to its live data, snapshot build and install times, and write
# throughput while snapshots are built, as a user would see them: a 3-node cluster
# (supervisor, free ports, temp dir), `raft-nosql bench` writing N new items, then
# `cluster du` once every node has applied everything and fjall has compacted. Finally
# one follower's data is wiped (stop-node, rejoin-node) and the time until it has
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
  --ops "$items" --value-size "$size" --keys 1000000000000 --table disk --interval 1 --json)
# Throughput per second of the run, and in the seconds that overlap a snapshot build on
# any node (event snapshot_built: its log time is the end of the build, ms its length;
# a build syncs the state and records its index, it copies nothing).
python3 - "$report" "$dir/data" <<'EOF'
import datetime, json, sys
r = json.loads(sys.argv[1])
l = r["write"]["latency_us"]
print(f"throughput {r['throughput_ops_s']:.0f} writes/s, p50 {l['p50'] / 1000:.1f} ms, "
      f"p99 {l['p99'] / 1000:.1f} ms, errors {r['errors']}")
t = r["timeline"]
builds = []
for i in range(3):
    for line in open(f"{sys.argv[2]}/node{i}/node.log"):
        if '"snapshot_built"' not in line:
            continue
        e = json.loads(line)
        if "ms" not in e:
            continue
        end = datetime.datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp()
        builds.append((i, end - e["ms"] / 1000 - t["started_unix_s"], end - t["started_unix_s"], e["ms"]))
for i in range(3):
    ms = [b[3] for b in builds if b[0] == i]
    if ms:
        print(f"node {i}: {len(ms)} snapshots built while writing, build time min {min(ms)} / max {max(ms)} ms")
full = [iv for iv in t["intervals"] if iv["end_s"] - iv["start_s"] > 0.5 * t["interval_s"]]
during = [iv for iv in full if any(iv["start_s"] < b[2] and b[1] < iv["end_s"] for b in builds)]
rest = [iv for iv in full if iv not in during]
def mean(xs):
    return sum(x["ok_per_s"] for x in xs) / len(xs) if xs else float("nan")
low = min((x["ok_per_s"] for x in during), default=float("nan"))
print(f"per-second throughput: {len(during)} s overlapping a snapshot build, mean {mean(during):.0f} "
      f"writes/s (lowest {low:.0f}); the other {len(rest)} s, mean {mean(rest):.0f} writes/s")
EOF

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
target=$(field "$(status "$leader")" applied)
t=$(now)
# Wipes the node's data (and its record of what it had made durable) and starts it.
"$bin" cluster rejoin-node "$lag" --config "$cfg" >/dev/null
caught=""
for _ in $(seq 1 6000); do
  a=$(field "$(status "$lag")" applied)
  if [ -n "$a" ] && [ "$a" -ge "$target" ]; then caught=$(since "$t"); break; fi
  sleep 0.1 # poll interval, bounded by the loop count
done
[ -n "$caught" ] || { echo "node $lag did not catch up within 600 s" >&2; exit 1; }
python3 - "$dir/data" "$lag" <<'EOF'
import json, sys
data, lag = sys.argv[1], int(sys.argv[2])
for i in range(3):
    for l in open(f"{data}/node{i}/node.log"):
        if i != lag and '"snapshot_written"' in l:
            e = json.loads(l)
            print(f"node {i}: wrote a snapshot of {e['size'] / 1e6:.1f} MB out to send in {e['ms']} ms")
        if i == lag and '"snapshot_installed"' in l:
            e = json.loads(l)
            print(f"node {i}: snapshot of {e['size'] / 1e6:.1f} MB (index {e['index']}) installed in {e.get('ms', '?')} ms")
EOF
echo "node $lag caught up to index $target in $caught s after rejoin-node"
"$bin" cluster du --config "$cfg"
