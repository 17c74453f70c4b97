#!/usr/bin/env bash
# Benchmark raft-nosql side by side with etcd on this machine.
#
# Starts a 3-member etcd cluster and a 3-node raft-nosql cluster on free loopback ports,
# each in its own temp dir, runs the same workloads against both in alternation with
# `raft-nosql bench --json` (release build), and prints one Markdown table plus the peak
# memory (VmHWM) of every node. Everything it starts is stopped on exit, by pid.
#
# Both systems fsync their Raft log before acknowledging (etcd's default, raft-nosql's
# only mode) and both log at warn level. The load generator runs on the same machine as
# both clusters, so CPU is shared; the script reports how many cores each side used.
#
# Usage: scripts/bench-vs-etcd.sh
# Environment:
#   DURATION=10        seconds measured per run
#   WARMUP=1           seconds of warm-up per run (not measured)
#   KEYS=10000         key space
#   VALUE_SIZE=100     bytes per value
#   WRITE_CLIENTS="1 16 64 256"   client counts of the write runs
#   READ_CLIENTS=64    clients of the read and mixed runs
#   OUT=path.md        also write the table there
#   RAW_DIR=dir        keep every run's JSON report there
#   SKIP_BUILD=1       use the existing target/release/raft-nosql
#
# Needs: the Rust toolchain. Installs etcd-server, curl and jq with apt-get if missing.
set -euo pipefail

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-1}
KEYS=${KEYS:-10000}
VALUE_SIZE=${VALUE_SIZE:-100}
WRITE_CLIENTS=${WRITE_CLIENTS:-"1 16 64 256"}
READ_CLIENTS=${READ_CLIENTS:-64}
OUT=${OUT:-}
RAW_DIR=${RAW_DIR:-}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET_DIR/release/raft-nosql

log() { printf '[bench-vs-etcd] %s\n' "$*" >&2; }
die() {
    log "error: $*"
    # Show what the servers said before their temp dir goes away.
    local f
    for f in "${WORK:-/nonexistent}"/etcd/*.log "${WORK:-/nonexistent}"/raft-nosql/*.out; do
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

# ---------------------------------------------------------------- bookkeeping
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-vs-etcd.XXXXXX")
NOSQL_PIDS=()
ETCD_PIDS=()
# shellcheck source=scripts/bench-lib.sh
. "$ROOT/scripts/bench-lib.sh"
install_etcd

# ---------------------------------------------------------------- etcd, 3 members
start_etcd "$WORK/etcd"
log "etcd up: $ETCD_TARGETS"

# ---------------------------------------------------------------- raft-nosql, 3 nodes
NOSQL_DIR=$WORK/raft-nosql
mkdir -p "$NOSQL_DIR"
NOSQL_PORTS=()
for i in 0 1 2; do NOSQL_PORTS+=("$(free_port)"); done
{
    echo "data_root = \"$NOSQL_DIR/data\""
    echo "log_level = \"warn\""
    echo
    echo "[supervisor]"
    echo "control_addr = \"127.0.0.1:$(free_port)\""
    for i in 0 1 2; do
        echo
        echo "[[nodes]]"
        echo "id = $i"
        echo "addr = \"127.0.0.1:${NOSQL_PORTS[$i]}\""
    done
} >"$NOSQL_DIR/cluster.toml"
for i in 0 1 2; do
    "$BIN" node --id "$i" --config "$NOSQL_DIR/cluster.toml" >"$NOSQL_DIR/node$i.out" 2>&1 &
    PIDS+=($!)
    NOSQL_PIDS+=($!)
done
NOSQL_TARGETS=""
for i in 0 1 2; do
    NOSQL_TARGETS+="${NOSQL_TARGETS:+,}127.0.0.1:${NOSQL_PORTS[$i]}"
    wait_for 30 "raft-nosql node $i" curl -sf "http://127.0.0.1:${NOSQL_PORTS[$i]}/status"
done
curl -sf -X POST "http://127.0.0.1:${NOSQL_PORTS[0]}/admin/init" >/dev/null || die "cluster init failed"
has_leader() {
    local i
    for i in 0 1 2; do
        curl -sf "http://127.0.0.1:${NOSQL_PORTS[$i]}/status" | jq -e '.leader_id != null' >/dev/null || return 1
    done
}
wait_for 30 "a raft-nosql leader" has_leader
log "raft-nosql up: $NOSQL_TARGETS"

# ---------------------------------------------------------------- the runs
# CPU ticks (user + system) used so far by the given pids.
cpu_ticks() {
    local pid total=0 stat rest
    for pid in "$@"; do
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        rest=${stat##*) }           # fields after "pid (comm) "
        set -- $rest
        total=$((total + ${12} + ${13}))   # utime, stime (fields 14, 15 of the file)
    done
    echo "$total"
}
CLK_TCK=$(getconf CLK_TCK)

RESULTS=$WORK/results
mkdir -p "$RESULTS"
[ -z "$RAW_DIR" ] || mkdir -p "$RAW_DIR"

# run_one SYSTEM NAME ARGS... : one bench run; its JSON goes to $RESULTS/SYSTEM.NAME.json,
# the cores used by the cluster and by the load generator to $RESULTS/SYSTEM.NAME.cpu.
run_one() {
    local system=$1 name=$2
    shift 2
    local targets pids
    if [ "$system" = etcd ]; then
        targets=$ETCD_TARGETS
        pids=("${ETCD_PIDS[@]}")
        set -- --system etcd "$@"
    else
        targets=$NOSQL_TARGETS
        pids=("${NOSQL_PIDS[@]}")
    fi
    local json=$RESULTS/$system.$name.json
    local before after t
    before=$(cpu_ticks "${pids[@]}")
    local TIMEFORMAT='%U %S %R'
    t=$( { time "$BIN" bench --target "$targets" --duration "$DURATION" --warmup "$WARMUP" \
        --keys "$KEYS" --value-size "$VALUE_SIZE" --json "$@" \
        >"$json" 2>"$RESULTS/$system.$name.err"; } 2>&1 ) || {
        log "$system $name failed: $(tail -3 "$RESULTS/$system.$name.err")"
    }
    after=$(cpu_ticks "${pids[@]}")
    # Cores used over the whole run (preload and warm-up included).
    read -r user sys real <<<"$t"
    awk -v d=$((after - before)) -v hz="$CLK_TCK" -v u="$user" -v s="$sys" -v r="$real" \
        'BEGIN { printf "%.2f %.2f\n", d / hz / r, (u + s) / r }' >"$RESULTS/$system.$name.cpu"
    [ -z "$RAW_DIR" ] || cp "$json" "$RAW_DIR/"
    log "$(printf '%-10s %-22s %s' "$system" "$name" \
        "$(jq -r '"\(.throughput_ops_s) ops/s, p99 \(.latency_us.p99) µs, \(.errors) errors"' "$json" 2>/dev/null || echo failed)")"
}

# name | bench arguments
WORKLOADS=()
for c in $WRITE_CLIENTS; do
    WORKLOADS+=("write c=$c|--workload write --clients $c")
done
WORKLOADS+=("read eventual c=$READ_CLIENTS|--workload read --clients $READ_CLIENTS --consistency eventual")
WORKLOADS+=("read strong c=$READ_CLIENTS|--workload read --clients $READ_CLIENTS --consistency strong")
WORKLOADS+=("mixed:90 c=$READ_CLIENTS|--workload mixed:90 --clients $READ_CLIENTS --consistency eventual")

for w in "${WORKLOADS[@]}"; do
    name=${w%%|*}
    args=${w#*|}
    file=$(echo "$name" | tr ' =:' '___')
    # shellcheck disable=SC2086  # word splitting of the argument list is intended
    run_one raft-nosql "$file" $args
    # shellcheck disable=SC2086
    run_one etcd "$file" $args
done

# ---------------------------------------------------------------- the table
field() { jq -r "$2 // empty" "$1" 2>/dev/null || true; }
fmt_ms() { awk -v us="$1" 'BEGIN { if (us == "") print "-"; else printf "%.2f ms", us / 1000 }'; }

TABLE=$WORK/table.md
{
    echo "Side by side on $(nproc) cores, ${DURATION}s per run (+${WARMUP}s warm-up), ${VALUE_SIZE}-byte values, ${KEYS} keys, 3 nodes each on loopback; $("$ETCD" --version 2>/dev/null | head -1)."
    echo
    echo "| workload | raft-nosql ops/s | raft-nosql p99 | etcd ops/s | etcd p99 | ratio (raft-nosql / etcd) |"
    echo "|---|---:|---:|---:|---:|---:|"
    for w in "${WORKLOADS[@]}"; do
        name=${w%%|*}
        file=$(echo "$name" | tr ' =:' '___')
        n=$RESULTS/raft-nosql.$file.json
        e=$RESULTS/etcd.$file.json
        n_ops=$(field "$n" .throughput_ops_s)
        e_ops=$(field "$e" .throughput_ops_s)
        ratio=$(awk -v a="$n_ops" -v b="$e_ops" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else printf "%.2f", a / b }')
        printf '| %s | %s | %s | %s | %s | %s |\n' "$name" "${n_ops:--}" "$(fmt_ms "$(field "$n" .latency_us.p99)")" \
            "${e_ops:--}" "$(fmt_ms "$(field "$e" .latency_us.p99)")" "$ratio"
    done
    echo
    echo "Errors and CPU per run (cores used by the 3 nodes / by the load generator, preload and warm-up included):"
    echo
    echo "| workload | raft-nosql errors | raft-nosql cores (nodes / bench) | etcd errors | etcd cores (nodes / bench) |"
    echo "|---|---:|---:|---:|---:|"
    for w in "${WORKLOADS[@]}"; do
        name=${w%%|*}
        file=$(echo "$name" | tr ' =:' '___')
        row="| $name"
        for s in raft-nosql etcd; do
            row+=" | $(field "$RESULTS/$s.$file.json" .errors)"
            row+=" | $(tr ' ' / <"$RESULTS/$s.$file.cpu" 2>/dev/null || echo -)"
        done
        echo "$row |"
    done
    echo
    echo "Peak RSS (VmHWM) per node at the end:"
    echo
    echo "| system | node | pid | peak RSS |"
    echo "|---|---|---:|---:|"
    for i in 0 1 2; do
        pid=${NOSQL_PIDS[$i]}
        echo "| raft-nosql | node$i | $pid | $(awk '/VmHWM/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$pid/status" 2>/dev/null || echo -) |"
    done
    for i in 0 1 2; do
        pid=${ETCD_PIDS[$i]}
        echo "| etcd | m$i | $pid | $(awk '/VmHWM/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$pid/status" 2>/dev/null || echo -) |"
    done
} >"$TABLE"

cat "$TABLE"
[ -z "$OUT" ] || cp "$TABLE" "$OUT"
