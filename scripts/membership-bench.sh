#!/usr/bin/env bash
# How long a new node takes to join a loaded cluster, and what the writes see meanwhile
# (issue 15). A 3-node cluster (release build, supervisor, free loopback ports, temp
# dir) is loaded with N items through `raft-nosql bench`; once the leader has built a
# snapshot and purged its log (so the new node must be sent a snapshot), a write load
# (`bench --workload write --interval 1`) runs for a fixed time, and part-way through,
# `raft-nosql cluster add-node` adds node 3. Reported: the add's total time and its
# phases (from the supervisor's GET /members), the snapshot's size and the time from the
# leader adding the learner to the learner's `snapshot_installed` event (node logs), and
# the acknowledged writes per second before, during and after the add.
# With --remove-leader, a second write load (0.1 s intervals) runs while
# `cluster remove-node` removes the leader: the longest stretch with no acknowledged
# write, and when it began and ended relative to the removal request.
#
# Usage: scripts/membership-bench.sh [--items N] [--value-size B] [--clients C]
#          [--duration S] [--add-after S] [--remove-leader] [--keep-logs DIR] [--bin PATH]
#   --items         items loaded before the add (default 100000)
#   --value-size    bytes per value (default 1000)
#   --clients       concurrent clients of the loads (default 64)
#   --duration      seconds of the write load around the add (default 60)
#   --add-after     seconds into the write load at which node 3 is added (default 15)
#   --remove-leader also time the removal of the leader (a second 20 s write load)
#   --keep-logs     copy the nodes' logs and the bench reports there before cleanup
#   --bin           raft-nosql binary (default target/release/raft-nosql if built)
set -euo pipefail
cd "$(dirname "$0")/.."
items=100000
value_size=1000
clients=64
duration=60
add_after=15
remove_leader=""
keep=""
. scripts/lib.sh
bin=$(default_bin)
while [ $# -gt 0 ]; do
  case "$1" in
    --items) items=$2; shift 2 ;;
    --value-size) value_size=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --add-after) add_after=$2; shift 2 ;;
    --remove-leader) remove_leader=1; shift ;;
    --keep-logs) keep=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
check_bin
case "$bin" in *debug*) echo "warning: $bin is a debug build; the figures will not be representative" >&2 ;; esac

temp_cluster
# Beyond temp_cluster's cleanup (cluster stop, which also stops the added node): the
# background processes this script starts.
bg=()
cleanup() {
  local p
  for p in "${bg[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${bg[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "$keep" ] && [ -d "$dir" ]; then
    mkdir -p "$keep"
    cp "$dir"/*.json "$dir"/*.txt "$keep"/ 2>/dev/null || true
    for n in "$dir"/data/node*; do cp "$n/node.log" "$keep/$(basename "$n").log" 2>/dev/null || true; done
  fi
  "$bin" cluster stop --config "$cfg" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
wait_leader
targets=127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}
control=127.0.0.1:${ports[3]}
new_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
new_addr=127.0.0.1:$new_port

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min)"
echo "binary: $bin"

# 1. Load: sequential keys, so every write creates one item.
echo "loading $items items of $value_size B values with $clients clients"
"$bin" bench --target "$targets" --workload write --clients "$clients" --keys "$items" \
  --ops "$items" --value-size "$value_size" --fresh --json >"$dir/load.json"
python3 - "$dir/load.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"loaded: {r['ok']} items acknowledged, {r['errors']} errors, {r['duration_s']:.1f} s "
      f"({r['throughput_ops_s']:.0f} writes/s, p99 {r['latency_us']['p99'] / 1000:.1f} ms)")
EOF

# 2. A snapshot that holds every loaded item (its index at or past the load's last
# entry), and a log that no longer starts at index 1: the new node must be sent it.
# Writes are grouped into log entries (group commit), so the load alone may stop short
# of the next `snapshot_logs_since_last` (5,000 entries): 5 s runs of overwrites of the
# same keys (the item count stays N) follow until the leader has such a snapshot.
wait_leader
loaded=$(field "$(status "$leader")" last_log_index)
snap=""; purged=""
for round in $(seq 1 40); do
  wait_leader
  s=$(status "$leader")
  snap=$(field "$s" snapshot_index); purged=$(field "$s" purged_index)
  [ -n "$snap" ] && [ "$snap" -ge "$loaded" ] && [ -n "$purged" ] && [ "$purged" -gt 0 ] && break
  echo "snapshot at ${snap:-none}, load ended at $loaded: 5 s more of overwrites (round $round)"
  "$bin" bench --target "$targets" --workload write --clients "$clients" --keys "$items" \
    --value-size "$value_size" --duration 5 --json >/dev/null
  sleep 1 # the snapshot is built in the background after the last entry
done
[ -n "$snap" ] && [ "$snap" -ge "$loaded" ] && [ -n "$purged" ] && [ "$purged" -gt 0 ] ||
  { echo "leader $leader has no snapshot past index $loaded after 40 rounds" >&2; exit 1; }
s=$(status "$leader")
echo "leader $leader: $(field "$s" items) items, last index $(field "$s" last_log_index), snapshot at $(field "$s" snapshot_index), log purged up to $purged"

# 3. The write load, in the background, and the add part-way through it. The
# supervisor's view of the change is polled meanwhile (phase changes, with their times).
echo "write load: $clients clients, ${duration} s, keys over the same $items items; add-node after ${add_after} s"
"$bin" bench --target "$targets" --workload write --clients "$clients" --keys "$items" \
  --value-size "$value_size" --duration "$duration" --interval 1 --json >"$dir/write.json" 2>"$dir/write.err" &
bench_pid=$!
bg+=("$bench_pid")
python3 - "$control" "$dir/members.txt" <<'EOF' &
import json, sys, time, urllib.request
url, out = f"http://{sys.argv[1]}/members", open(sys.argv[2], "w")
http = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only
last = None
while True:
    try:
        c = json.load(http.open(url, timeout=2)).get("change") or {}
    except Exception:
        c = {}
    key = (c.get("op"), c.get("phase"), c.get("snapshot_installed"))
    if c and key != last:
        print(json.dumps({"t": time.time(), **c}), file=out, flush=True)
        last = key
    time.sleep(0.1)  # poll interval; stopped by the script
EOF
poller_pid=$!
bg+=("$poller_pid")

sleep "$add_after" # the write load's "before" part
add_start=$(now)
"$bin" cluster add-node --config "$cfg" --id 3 --addr "$new_addr" | tee "$dir/add.txt"
add_end=$(now)
echo "add-node took $(since "$add_start") s"
wait "$bench_pid" || { echo "the write load failed:" >&2; cat "$dir/write.err" >&2; exit 1; }

python3 - "$dir" "$add_start" "$add_end" <<'EOF'
import glob, json, os, sys
from datetime import datetime
d, add_start, add_end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])

def events(node):
    out = []
    for line in open(os.path.join(d, "data", f"node{node}", "node.log"), errors="replace"):
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if isinstance(e, dict) and "event" in e:
            e["t"] = datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp()
            out.append(e)
    return out

def at(t):
    return f"{t - add_start:+.2f} s"

changes = [json.loads(l) for l in open(os.path.join(d, "members.txt"))]
adds = [c for c in changes if c.get("op") == "add"]
phase_t = {}
for c in adds:
    phase_t.setdefault(c["phase"], c["t"])
print("\nphases of the add (first seen by polling GET /members every 0.1 s; from add-node):")
for c in adds:
    print(f"  {at(c['t'])}  {c['phase']:<12} {c.get('message', '')}")
final = adds[-1] if adds else {}
print(f"add total: {(add_end - add_start):.2f} s (add-node command); supervisor's elapsed {final.get('elapsed_ms', 0) / 1000:.2f} s")

all_events = {n: events(n) for n in range(4) if os.path.exists(os.path.join(d, "data", f"node{n}", "node.log"))}
learner_added = [e for n in range(3) for e in all_events.get(n, []) if e["event"] == "learner_added" and e["t"] >= add_start - 1]
caught_up = [e for n in range(3) for e in all_events.get(n, []) if e["event"] == "learner_caught_up" and e["t"] >= add_start - 1]
installed = [e for e in all_events.get(3, []) if e["event"] == "snapshot_installed"]
started = [e for e in all_events.get(3, []) if e["event"] == "node_started"]
built = [(n, e) for n in range(3) for e in all_events.get(n, []) if e["event"] == "snapshot_built" and e["t"] >= add_start - 30]
if started:
    print(f"  {at(started[0]['t'])}  node 3: node_started")
if learner_added:
    print(f"  {at(learner_added[0]['t'])}  node {learner_added[0]['node_id']}: learner_added")
for e in installed:
    print(f"  {at(e['t'])}  node 3: snapshot_installed index {e.get('index')} size {e.get('size')} B ({e.get('size', 0) / 2**20:.1f} MiB)")
if caught_up:
    e = caught_up[0]
    print(f"  {at(e['t'])}  node {e['node_id']}: learner_caught_up matched {e.get('matched')} of {e.get('leader_last')}")
for n, e in built:
    print(f"  {at(e['t'])}  node {n}: snapshot_built index {e.get('index')} size {e.get('size')} B")
if learner_added and caught_up:
    print(f"catch-up (learner_added -> learner_caught_up, leader's log): {caught_up[0]['t'] - learner_added[0]['t']:.2f} s")
if learner_added and installed:
    print(f"snapshot sent and installed (learner_added -> snapshot_installed): {installed[0]['t'] - learner_added[0]['t']:.2f} s "
          f"for {installed[0].get('size', 0) / 2**20:.1f} MiB")
elif not installed:
    print("node 3 installed no snapshot (it caught up from the log)")

r = json.load(open(os.path.join(d, "write.json")))
tl = r["timeline"]
t0 = tl["started_unix_s"]
iv = [(t0 + i["start_s"], t0 + i["end_s"], i["ok"], i["errors"]) for i in tl["intervals"]]
def part(name, sel):
    if not sel:
        print(f"  {name:<7} -")
        return
    secs = sum(b - a for a, b, _, _ in sel)
    ok, err = sum(x[2] for x in sel), sum(x[3] for x in sel)
    rates = [x[2] / (x[1] - x[0]) for x in sel if x[1] - x[0] > 0.5]
    low = f", slowest 1 s {min(rates):.0f}/s, fastest {max(rates):.0f}/s" if rates else ""
    print(f"  {name:<7} {ok / secs:8.0f} writes/s over {secs:5.1f} s ({err} errors{low})")
print(f"\nwrite throughput ({r['clients']} clients, {r['value_size']} B values; whole run {r['throughput_ops_s']:.0f}/s, "
      f"p99 {r['latency_us']['p99'] / 1000:.1f} ms, {r['errors']} errors):")
# Intervals wholly before the add, overlapping it, wholly after it.
part("before", [x for x in iv if x[1] <= add_start])
part("during", [x for x in iv if x[0] < add_end and x[1] > add_start])
part("after", [x for x in iv if x[0] >= add_end])
print("  per second (s from add-node: writes/s):")
print("   " + ", ".join(f"{a - add_start:+.0f}: {ok / (b - a):.0f}" for a, b, ok, _ in iv if b - a > 0.5))
EOF

# 4. Optionally: remove the leader through a membership change, under load.
if [ -n "$remove_leader" ]; then
  wait_leader_all() {
    local i l
    for _ in $(seq 1 600); do
      for i in 0 1 2 3; do
        l=$(field "$(curl -s --max-time 2 "$(addr_of "$i")/status" || true)" leader_id)
        if [ -n "$l" ]; then echo "$l"; return 0; fi
      done
      sleep 0.1 # poll interval, bounded by the loop count
    done
    return 1
  }
  addr_of() { if [ "$1" = 3 ]; then echo "$new_addr"; else echo "127.0.0.1:${ports[$1]}"; fi; }
  old=$(wait_leader_all)
  all=$targets,$new_addr
  echo
  echo "removing leader $old under a 20 s write load (0.1 s intervals), 5 s in"
  "$bin" bench --target "$all" --workload write --clients "$clients" --keys "$items" \
    --value-size "$value_size" --duration 20 --interval 0.1 --json >"$dir/remove.json" 2>"$dir/remove.err" &
  bench_pid=$!
  bg+=("$bench_pid")
  sleep 5 # before the removal
  rm_start=$(now)
  "$bin" cluster remove-node "$old" --config "$cfg" | tee "$dir/remove.txt"
  rm_end=$(now)
  echo "remove-node took $(since "$rm_start") s"
  wait "$bench_pid" || { echo "the write load failed:" >&2; cat "$dir/remove.err" >&2; exit 1; }
  echo "new leader: $(wait_leader_all)"
  python3 - "$dir/remove.json" "$rm_start" "$rm_end" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
rm_start, rm_end = float(sys.argv[2]), float(sys.argv[3])
t0 = r["timeline"]["started_unix_s"]
iv = [(t0 + i["start_s"], t0 + i["end_s"], i["ok"], i["errors"]) for i in r["timeline"]["intervals"]]
# Stretches of intervals with no acknowledged write that end after the removal began.
stalls, cur = [], None
for a, b, ok, _ in iv:
    if ok == 0:
        cur = (cur[0], b) if cur else (a, b)
    else:
        if cur and cur[1] > rm_start:
            stalls.append(cur)
        cur = None
if cur and cur[1] > rm_start:
    stalls.append(cur)
before = [x for x in iv if x[1] <= rm_start]
rate = sum(x[2] for x in before) / max(1e-9, sum(x[1] - x[0] for x in before))
print(f"writes before the removal: {rate:.0f}/s; {r['errors']} errors in the run ({r['errors_by_kind']})")
if stalls:
    a, b = max(stalls, key=lambda x: x[1] - x[0])
    print(f"longest stretch with no acknowledged write: {b - a:.1f} s, from {a - rm_start:+.1f} s to "
          f"{b - rm_start:+.1f} s after remove-node was issued (0.1 s intervals; remove-node returned at "
          f"{rm_end - rm_start:+.1f} s)")
else:
    print("no 0.1 s interval without an acknowledged write after remove-node")
print("  per 0.1 s from remove-node (acks):")
print("   " + " ".join(str(ok) for a, b, ok, _ in iv if a >= rm_start - 1 and a < rm_start + 6))
EOF
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
