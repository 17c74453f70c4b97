#!/usr/bin/env bash
# How long a follower that missed a large backlog takes to catch up, as a user would see
# it: a 3-node cluster (supervisor, free ports, temp dir), `cluster stop-node` of a
# follower, N PUTs of items just under the 400 KB limit through the leader, then
# `cluster start-node` and the time until the follower has applied the leader's last
# index. Finally the other follower is stopped and a write must still commit (the
# caught-up follower restored the cluster's fault tolerance).
#
# Usage: scripts/catchup.sh [--items N] [--item-kb K] [--bin PATH]
#   --items    items written while the follower is down (default 200, about 78 MB)
#   --item-kb  item size in KB (default 390)
#   --bin      raft-nosql binary (default target/release/raft-nosql if built, else debug)
set -euo pipefail
cd "$(dirname "$0")/.."
items=200
kb=390
. scripts/lib.sh
bin=$(default_bin)
while [ $# -gt 0 ]; do
  case "$1" in
    --items) items=$2; shift 2 ;;
    --item-kb) kb=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
check_bin
temp_cluster
wait_leader
lag=$(( (leader + 1) % 3 )); other=$(( (leader + 2) % 3 ))
la=127.0.0.1:${ports[$leader]}
curl -sf -X POST "$la/tables" -d '{"table_name":"blobs","partition_key":{"name":"k","type":"S"}}' >/dev/null

"$bin" cluster stop-node "$lag" --config "$cfg" >/dev/null
body=$dir/item.json
python3 -c "import sys; sys.stdout.write('{\"k\":\"K\",\"data\":\"' + 'x' * ($kb * 1024) + '\"}')" >"$body"
echo "writing $items items of $kb KB through leader $leader while node $lag is stopped"
t=$(now)
for k in $(seq 1 "$items"); do
  sed "s/\"K\"/\"blob-$k\"/" "$body" | curl -sf -X PUT "$la/tables/blobs/items" --data-binary @- >/dev/null
done
echo "wrote $(( items * kb / 1024 )) MB in $(since "$t") s"
target=$(field "$(status "$leader")" applied)

"$bin" cluster start-node "$lag" --config "$cfg" >/dev/null
t=$(now)
caught=""
for _ in $(seq 1 6000); do
  a=$(field "$(status "$lag")" applied)
  if [ -n "$a" ] && [ "$a" -ge "$target" ]; then caught=$(since "$t"); break; fi
  sleep 0.1 # poll interval, bounded by the loop count
done
[ -n "$caught" ] || { echo "node $lag did not catch up within 600 s" >&2; exit 1; }
echo "node $lag caught up to index $target in $caught s after start-node"

"$bin" cluster stop-node "$other" --config "$cfg" >/dev/null
t=$(now)
for _ in $(seq 1 300); do
  if curl -sf -L -X PUT "$la/tables/blobs/items" -d '{"k":"after","v":1}' >/dev/null 2>&1; then
    echo "with node $other stopped too, a write committed after $(since "$t") s"
    exit 0
  fi
  sleep 0.1 # poll interval, bounded by the loop count
done
echo "no write committed with node $other stopped" >&2
exit 1
