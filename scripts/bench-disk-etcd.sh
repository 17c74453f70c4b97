#!/usr/bin/env bash
# etcd's side of the disk table (BENCHMARKS.md, "Disk"): the bytes each etcd 3.4 member
# keeps for the same data `scripts/bench-disk.sh` writes into raft-nosql, measured after
# etcd's own compaction and defragmentation, as an operator would run them.
#
# A 3-member etcd (Debian's etcd-server, fsync on, loopback, temp dir) takes N new keys of
# B-byte values from `raft-nosql bench --system etcd` (the same load generator and key
# format as the raft-nosql run); then the keyspace history is compacted to the current
# revision (physical), every member is defragmented, and each member's data directory is
# measured in allocated blocks: bbolt's db, the snapshot files and the WAL (etcd
# preallocates 64 MB WAL segments). Live = keys x (key bytes + value bytes).
#
# Usage: scripts/bench-disk-etcd.sh [--items N] [--value-size B] [--clients C]
#   --items       keys written (default 100000)
#   --value-size  bytes per value (default 1000)
#   --clients     concurrent bench clients (default 64)
# Needs a release build (make release); installs etcd-server with apt-get when missing.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
items=100000
size=1000
clients=64
while [ $# -gt 0 ]; do
    case "$1" in
        --items) items=$2; shift 2 ;;
        --value-size) size=$2; shift 2 ;;
        --clients) clients=$2; shift 2 ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/raft-nosql
log() { printf '[bench-disk-etcd] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
[ -x "$BIN" ] || die "no release binary at $BIN: run 'make release'"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-disk-etcd.XXXXXX")
# shellcheck source=scripts/bench-lib.sh
. "$ROOT/scripts/bench-lib.sh"
install_etcd
start_etcd "$WORK/etcd"
log "etcd up: $ETCD_TARGETS"

keys=1000000000000
echo "== writing $items keys of $size B with $clients clients into etcd"
report=$("$BIN" bench --system etcd --target "$ETCD_TARGETS" --workload write --clients "$clients" \
    --ops "$items" --value-size "$size" --keys "$keys" --json)
echo "$report" | jq -r '"throughput \(.throughput_ops_s | floor) writes/s, p50 \(.write.latency_us.p50 / 1000) ms, p99 \(.write.latency_us.p99 / 1000) ms, errors \(.errors)"'

api() { curl -sf -X POST "http://127.0.0.1:${ETCD_CLIENT[$1]}$2" -d "$3"; }
# Every key the bench wrote starts with "key" (base64 a2V5; range end "kez", a2V6).
count=$(api 0 /v3/kv/range '{"key":"a2V5","range_end":"a2V6","count_only":true}')
rev=$(echo "$count" | jq -r .header.revision)
n=$(echo "$count" | jq -r '.count // "0"')
keylen=$(( 3 + ${#keys} - 1 ))
live=$(( n * (keylen + size) ))
echo "== $n keys at revision $rev; compacting and defragmenting"
api 0 /v3/kv/compaction "{\"revision\":\"$rev\",\"physical\":true}" >/dev/null
for i in 0 1 2; do api "$i" /v3/maintenance/defragment '{}' >/dev/null; done

echo "| member | live | used | ratio | db (bbolt) | snap files | wal | db size / in use (etcd's status) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
mb() { python3 -c "import sys; print(f'{int(sys.argv[1]) / 1e6:.1f} MB')" "$1"; }
for i in 0 1 2; do
    m=$WORK/etcd/m$i/member
    alloc() { du -s --block-size=1 "$@" 2>/dev/null | awk '{s += $1} END {print s + 0}'; }
    db=$(alloc "$m/snap/db")
    total=$(alloc "$m")
    wal=$(alloc "$m/wal")
    snaps=$(( total - db - wal ))
    st=$(api "$i" /v3/maintenance/status '{}')
    ratio=$(python3 -c "import sys; print(f'{int(sys.argv[1]) / max(int(sys.argv[2]), 1):.2f}x')" "$total" "$live")
    echo "| m$i | $(mb "$live") | $(mb "$total") | $ratio | $(mb "$db") | $(mb "$snaps") | $(mb "$wal") | $(mb "$(echo "$st" | jq -r .dbSize)") / $(mb "$(echo "$st" | jq -r '.dbSizeInUse // "0"')") |"
done
