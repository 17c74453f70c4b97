#!/usr/bin/env bash
# What TLS costs on loopback: put and get throughput and p50/p99 latency of a 3-node
# raft-nosql cluster over plain http and over https with mutual TLS between the nodes.
#
# Starts two clusters on free loopback ports, each in its own temp dir (one plain, one
# with [tls] and certificates from scripts/gen-certs.sh), runs the same workloads against
# both in alternation with `raft-nosql bench --json` (release build; --ca-file and https
# targets for the TLS one), and prints one Markdown table. Everything it starts is
# stopped on exit, by pid.
#
# Usage: scripts/bench-tls.sh
# Environment:
#   DURATION=10        seconds measured per run
#   WARMUP=1           seconds of warm-up per run (not measured)
#   KEYS=10000         key space
#   VALUE_SIZE=100     bytes per value
#   CLIENTS="1 64"     client counts of the write and read runs
#   REPEAT=1           runs per workload and side (the table shows the median run by
#                      throughput; with an even count, the lower of the middle two)
#   OUT=path.md        also write the table there
#   SKIP_BUILD=1       use the existing release binary
#
# Needs: the Rust toolchain. Installs curl, jq and openssl with apt-get if missing.
set -euo pipefail

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-1}
KEYS=${KEYS:-10000}
VALUE_SIZE=${VALUE_SIZE:-100}
CLIENTS=${CLIENTS:-"1 64"}
REPEAT=${REPEAT:-1}
OUT=${OUT:-}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET_DIR/release/raft-nosql

log() { printf '[bench-tls] %s\n' "$*" >&2; }
die() {
    log "error: $*"
    local f
    for f in "${WORK:-/nonexistent}"/*/node*.out; do
        [ -s "$f" ] || continue
        log "--- last lines of $f"
        tail -n 15 "$f" >&2
    done
    exit 1
}


if [ -z "${SKIP_BUILD:-}" ]; then
    log "building raft-nosql (release)"
    (cd "$ROOT" && cargo build --release --quiet)
fi
[ -x "$BIN" ] || die "no release binary at $BIN"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-tls.XXXXXX")
# shellcheck source=scripts/bench-lib.sh
. "$ROOT/scripts/bench-lib.sh"
need curl jq openssl

"$ROOT/scripts/gen-certs.sh" "$WORK/certs" 3 >/dev/null
CA=$WORK/certs/ca.pem

# start_cluster NAME SCHEME: three `raft-nosql node` processes on free ports in
# $WORK/NAME; sets TARGETS_<NAME> (scheme://host:port,...).
start_cluster() {
    local name=$1 scheme=$2 dir=$WORK/$1 i ports=() curl_tls=()
    mkdir -p "$dir"
    for i in 0 1 2; do ports+=("$(free_port)"); done
    {
        echo "data_root = \"$dir/data\""
        echo "log_level = \"warn\""
        echo
        echo "[supervisor]"
        echo "control_addr = \"127.0.0.1:$(free_port)\""
        if [ "$scheme" = https ]; then
            echo
            echo "[tls]"
            echo "ca_file = \"$CA\""
            echo "cert_file = \"$WORK/certs/node{id}.pem\""
            echo "key_file = \"$WORK/certs/node{id}-key.pem\""
        fi
        for i in 0 1 2; do
            echo
            echo "[[nodes]]"
            echo "id = $i"
            echo "addr = \"127.0.0.1:${ports[$i]}\""
        done
    } >"$dir/cluster.toml"
    for i in 0 1 2; do
        "$BIN" node --id "$i" --config "$dir/cluster.toml" >"$dir/node$i.out" 2>&1 &
        PIDS+=($!)
    done
    [ "$scheme" = https ] && curl_tls=(--cacert "$CA" --cert "$WORK/certs/node0.pem" --key "$WORK/certs/node0-key.pem")
    local targets=""
    for i in 0 1 2; do
        targets+="${targets:+,}$scheme://127.0.0.1:${ports[$i]}"
        wait_for 30 "$name node $i" curl -sf "${curl_tls[@]}" "$scheme://127.0.0.1:${ports[$i]}/status"
    done
    curl -sf "${curl_tls[@]}" -X POST "$scheme://127.0.0.1:${ports[0]}/admin/init" >/dev/null || die "$name: init failed"
    has_leader() {
        local j
        for j in 0 1 2; do
            curl -sf "${curl_tls[@]}" "$scheme://127.0.0.1:${ports[$j]}/status" | jq -e '.leader_id != null' >/dev/null || return 1
        done
    }
    wait_for 30 "a $name leader" has_leader
    printf -v "TARGETS_$name" '%s' "$targets"
    log "$name up: $targets"
}
start_cluster plain http
start_cluster tls https

RESULTS=$WORK/results
mkdir -p "$RESULTS"

# run_one SIDE NAME REP ARGS...: one bench run, its JSON in $RESULTS/SIDE.NAME.REP.json.
run_one() {
    local side=$1 name=$2 rep=$3 targets ca=()
    shift 3
    if [ "$side" = tls ]; then targets=$TARGETS_tls; ca=(--ca-file "$CA"); else targets=$TARGETS_plain; fi
    local json=$RESULTS/$side.$name.$rep.json
    "$BIN" "${ca[@]}" bench --target "$targets" --duration "$DURATION" --warmup "$WARMUP" \
        --keys "$KEYS" --value-size "$VALUE_SIZE" --table "bench_$name" --json "$@" \
        >"$json" 2>"$RESULTS/$side.$name.$rep.err" || log "$side $name failed: $(tail -3 "$RESULTS/$side.$name.$rep.err")"
    log "$(printf '%-6s %-14s %s' "$side" "$name" \
        "$(jq -r '"\(.throughput_ops_s) ops/s, p50 \(.latency_us.p50) µs, p99 \(.latency_us.p99) µs, \(.errors) errors"' "$json" 2>/dev/null || echo failed)")"
}

WORKLOADS=()
for c in $CLIENTS; do
    WORKLOADS+=("put c=$c|--workload write --clients $c")
    WORKLOADS+=("get c=$c|--workload read --clients $c --consistency eventual")
done

for w in "${WORKLOADS[@]}"; do
    name=${w%%|*}
    args=${w#*|}
    file=$(echo "$name" | tr ' =:' '___')
    for rep in $(seq "$REPEAT"); do
        # shellcheck disable=SC2086  # word splitting of the argument list is intended
        run_one plain "$file" "$rep" $args
        # shellcheck disable=SC2086
        run_one tls "$file" "$rep" $args
    done
done

# The median run (by throughput) of a side and workload.
median() {
    local side=$1 file=$2
    for f in "$RESULTS/$side.$file".*.json; do
        jq -r --arg f "$f" '"\(.throughput_ops_s) \($f)"' "$f" 2>/dev/null || true
    done | sort -n | awk '{ a[NR] = $2 } END { if (NR) print a[int((NR + 1) / 2)] }'
}
ms() { awk -v us="$1" 'BEGIN { if (us == "") print "-"; else printf "%.2f", us / 1000 }'; }
TABLE=$WORK/table.md
{
    echo "3 nodes on loopback, $(nproc) cores, ${DURATION}s per run (+${WARMUP}s warm-up), ${VALUE_SIZE}-byte values, ${KEYS} keys, REPEAT=$REPEAT (median run); puts are fsynced writes through the leader, gets eventual reads spread over the nodes."
    echo
    echo "| workload | http ops/s | https ops/s | change | http p50 / p99 (ms) | https p50 / p99 (ms) |"
    echo "|---|---:|---:|---:|---:|---:|"
    for w in "${WORKLOADS[@]}"; do
        name=${w%%|*}
        file=$(echo "$name" | tr ' =:' '___')
        p=$(median plain "$file")
        t=$(median tls "$file")
        p_ops=$(jq -r '.throughput_ops_s // empty' "$p" 2>/dev/null || true)
        t_ops=$(jq -r '.throughput_ops_s // empty' "$t" 2>/dev/null || true)
        change=$(awk -v a="$p_ops" -v b="$t_ops" 'BEGIN { if (a == "" || b == "" || a == 0) print "-"; else printf "%+.0f%%", (b / a - 1) * 100 }')
        printf '| %s | %s | %s | %s | %s / %s | %s / %s |\n' "$name" "${p_ops:--}" "${t_ops:--}" "$change" \
            "$(ms "$(jq -r '.latency_us.p50 // empty' "$p" 2>/dev/null)")" "$(ms "$(jq -r '.latency_us.p99 // empty' "$p" 2>/dev/null)")" \
            "$(ms "$(jq -r '.latency_us.p50 // empty' "$t" 2>/dev/null)")" "$(ms "$(jq -r '.latency_us.p99 // empty' "$t" 2>/dev/null)")"
    done
} >"$TABLE"

cat "$TABLE"
[ -z "$OUT" ] || cp "$TABLE" "$OUT"
