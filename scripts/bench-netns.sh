#!/usr/bin/env bash
# raft-nosql and etcd across a real network on one machine: the same three network
# namespaces (scripts/netns-cluster.sh), the same one-way delay on every packet each
# node sends, the same load generator (`raft-nosql bench --json`, release build).
#
# For each delay: write throughput and p50/p99 latency at each client count, then the
# failover time (SIGKILL of the leader to the first acknowledged write, through the
# surviving nodes, the median of FAILOVERS kills). raft-nosql runs first; its nodes are
# stopped before etcd 3.4 starts in the same namespaces. Prints one Markdown table.
#
# The load generator runs on this machine, outside the namespaces: its requests reach the
# nodes undelayed, their answers carry the node's delay. A write's latency is thus about
# three one-way delays (answer, and the leader's round trip to a follower) plus the fsync.
# etcd runs with its defaults (heartbeat 100 ms, election timeout 1000 ms), raft-nosql
# with its own (heartbeat 100 ms, election timeout 500-1000 ms): failover times reflect
# those settings as much as the code.
#
# Known problem: in one run the etcd failover step stalled after its first kill (writes
# through the two surviving members kept failing); not understood yet. FAILOVERS=1
# completed in the runs so far.
#
# Usage: sudo scripts/bench-netns.sh
# Environment:
#   DELAYS="0.5 5 25"   one-way delays in ms
#   CLIENTS="1 64"      client counts of the write runs
#   DURATION=5          seconds measured per run
#   WARMUP=1            seconds of warm-up per run (not measured)
#   FAILOVERS=3         leader kills per delay and system
#   OUT=path.md         also write the table there
#   BENCH_BIN=path      the raft-nosql binary (default: the release build; built if missing)
#
# Needs root. Installs etcd-server, curl and jq (and what netns-cluster.sh needs) with
# apt-get if missing. Everything it starts is stopped, and every namespace removed, on exit.
set -euo pipefail

DELAYS=${DELAYS:-"0.5 5 25"}
CLIENTS=${CLIENTS:-"1 64"}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
FAILOVERS=${FAILOVERS:-3}
OUT=${OUT:-}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${BENCH_BIN:-$TARGET_DIR/release/raft-nosql}
NET=$ROOT/scripts/netns-cluster.sh

log() { echo "bench-netns: $*" >&2; }
die() { log "$*"; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces): run it with sudo"

WORK=$(mktemp -d -t bench-netns.XXXXXX)
# shellcheck source=scripts/bench-lib.sh
. "$ROOT/scripts/bench-lib.sh"
export NETNS_PREFIX=${NETNS_PREFIX:-bn}
export NETNS_RUN_DIR=$WORK/run
trap '"$NET" down >/dev/null 2>&1 || true; cleanup' EXIT

if [ ! -x "$BIN" ]; then
    log "building the release binary"
    (cd "$ROOT" && cargo build --release --quiet)
fi
export NETNS_BIN=$BIN
install_etcd

now_ms() { date +%s%3N; }
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else print v[int((NR + 1) / 2)] }'; }

# bench SYSTEM NAME TARGETS ARGS...: one run, its JSON in $WORK/SYSTEM.NAME.json.
bench() {
    local system=$1 name=$2 targets=$3
    shift 3
    "$BIN" bench --system "$system" --target "$targets" --duration "$DURATION" --warmup "$WARMUP" \
        --json "$@" >"$WORK/$system.$name.json" 2>"$WORK/$system.$name.err" ||
        log "$system $name failed: $(tail -3 "$WORK/$system.$name.err")"
    log "$(printf '%-10s %-16s %s' "$system" "$name" \
        "$(jq -r '"\(.throughput_ops_s) ops/s, p50 \(.latency_us.p50) µs, p99 \(.latency_us.p99) µs, \(.errors) errors"' \
            "$WORK/$system.$name.json" 2>/dev/null || echo failed)")"
}

# until_acked CMD...: milliseconds from now until CMD (a write) first succeeds (60 s at most).
until_acked() {
    local t0 deadline
    t0=$(now_ms)
    deadline=$((t0 + 60000))
    until "$@"; do
        [ "$(now_ms)" -lt "$deadline" ] || { echo "-"; return; }
    done
    echo $(($(now_ms) - t0))
}

# ---------------------------------------------------------------- raft-nosql
nosql_write() { # a write through any node but $dead, following the redirect
    local i code
    for i in 0 1 2; do
        [ "$i" = "$dead" ] && continue
        code=$(curl -s --noproxy '*' -o /dev/null -w '%{http_code}' --max-time 1 -L -X PUT \
            -H 'content-type: application/json' -d '{"k":"failover","v":"x"}' \
            "http://$("$NET" addr "$i")/tables/bench/items" || true)
        [ "$code" = 200 ] && return 0
    done
    return 1
}

nosql_failover() {
    local leader ms all=""
    for _ in $(seq "$FAILOVERS"); do
        leader=$("$NET" leader --wait)
        dead=$leader
        ms=$(kill -KILL "$(cat "$NETNS_RUN_DIR/node$leader.pid")" && until_acked nosql_write)
        all+=" $ms"
        "$NET" start "$leader" >/dev/null
        "$NET" leader --wait >/dev/null
        sleep 1 # let the restarted node catch up before the next kill
    done
    echo "$all"
}

# ---------------------------------------------------------------- etcd
ETCD_NS_PIDS=()
etcd_ip() { "$NET" addr "$1" | cut -d: -f1; }
start_etcd_member() {
    local i=$1 initial="" j
    for j in 0 1 2; do initial+="${initial:+,}m$j=http://$(etcd_ip "$j"):2380"; done
    "$NET" exec "$i" "$ETCD" --name "m$i" --data-dir "$ETCD_DIR/m$i" \
        --listen-client-urls "http://$(etcd_ip "$i"):2379" \
        --advertise-client-urls "http://$(etcd_ip "$i"):2379" \
        --listen-peer-urls "http://$(etcd_ip "$i"):2380" \
        --initial-advertise-peer-urls "http://$(etcd_ip "$i"):2380" \
        --initial-cluster "$initial" --initial-cluster-token "bench-netns-$$" \
        --initial-cluster-state new --logger zap --log-level warn \
        >>"$ETCD_DIR/m$i.log" 2>&1 &
    ETCD_NS_PIDS[i]=$!
    PIDS+=($!)
}
etcd_healthy() { curl -sf --noproxy '*' --max-time 1 "http://$(etcd_ip "$1"):2379/health" | grep -q true; }
etcd_status() { curl -s --noproxy '*' --max-time 1 -X POST -d '{}' "http://$(etcd_ip "$1"):2379/v3/maintenance/status"; }
etcd_leader() { # the index of the member that leads
    local i s
    for i in 0 1 2; do
        s=$(etcd_status "$i") || continue
        if [ -n "$s" ] && [ "$(jq -r '.header.member_id == .leader' <<<"$s")" = true ]; then echo "$i"; return 0; fi
    done
    return 1
}
etcd_write() {
    local i
    for i in 0 1 2; do
        [ "$i" = "$dead" ] && continue
        curl -sf --noproxy '*' -o /dev/null --max-time 1 -X POST -d '{"key":"ZmFpbG92ZXI=","value":"eA=="}' \
            "http://$(etcd_ip "$i"):2379/v3/kv/put" && return 0
    done
    return 1
}
etcd_failover() {
    local leader ms all="" i
    for _ in $(seq "$FAILOVERS"); do
        wait_for 30 "an etcd leader" etcd_leader
        leader=$(etcd_leader)
        kill -KILL "${ETCD_NS_PIDS[$leader]}"
        wait "${ETCD_NS_PIDS[$leader]}" 2>/dev/null || true
        dead=$leader
        ms=$(until_acked etcd_write)
        all+=" $ms"
        start_etcd_member "$leader"
        for i in 0 1 2; do wait_for 60 "etcd member $i" etcd_healthy "$i"; done
        sleep 1 # let the restarted member catch up before the next kill
    done
    echo "$all"
}

# ---------------------------------------------------------------- the runs
declare -A FAILOVER
for d in $DELAYS; do
    log "one-way delay $d ms"
    "$NET" up 3 >/dev/null
    for i in 0 1 2; do "$NET" delay "$i" "$d" >/dev/null; done
    targets=$("$NET" targets)
    for c in $CLIENTS; do
        bench raft-nosql "d$d.c$c" "$targets" --config "$("$NET" config)" --workload write --clients "$c"
    done
    dead=""
    FAILOVER[raft-nosql.$d]=$(nosql_failover)
    log "raft-nosql failover (ms):${FAILOVER[raft-nosql.$d]}"
    for i in 0 1 2; do "$NET" kill "$i" >/dev/null; done

    ETCD_DIR=$WORK/etcd.$d
    mkdir -p "$ETCD_DIR"
    for i in 0 1 2; do start_etcd_member "$i"; done
    for i in 0 1 2; do wait_for 60 "etcd member $i" etcd_healthy "$i"; done
    etcd_targets=""
    for i in 0 1 2; do etcd_targets+="${etcd_targets:+,}$(etcd_ip "$i"):2379"; done
    for c in $CLIENTS; do
        bench etcd "d$d.c$c" "$etcd_targets" --workload write --clients "$c"
    done
    dead=""
    FAILOVER[etcd.$d]=$(etcd_failover)
    log "etcd failover (ms):${FAILOVER[etcd.$d]}"
    for i in 0 1 2; do
        kill -TERM "${ETCD_NS_PIDS[$i]}" 2>/dev/null || true
        wait "${ETCD_NS_PIDS[$i]}" 2>/dev/null || true
    done
    "$NET" down >/dev/null
done

# ---------------------------------------------------------------- the table
field() { jq -r "$2 // empty" "$1" 2>/dev/null || true; }
fmt_ms() { awk -v us="$1" 'BEGIN { if (us == "") print "-"; else printf "%.1f", us / 1000 }'; }
TABLE=$WORK/table.md
{
    echo "Three nodes in three network namespaces on one bridge, $(nproc) cores, ${DURATION}s per run (+${WARMUP}s warm-up), 100-byte values; every packet a node sends delayed by the one-way delay; $("$ETCD" --version 2>/dev/null | head -1) through its HTTP/JSON gateway. Latencies in ms; failover = leader SIGKILL to the first acknowledged write, median of $FAILOVERS (all in brackets)."
    echo
    header="| one-way delay | system"
    rule="|---|---"
    for c in $CLIENTS; do
        header+=" | writes/s c=$c | p50 c=$c | p99 c=$c"
        rule+="|---:|---:|---:"
    done
    echo "$header | failover ms |"
    echo "$rule|---:|"
    for d in $DELAYS; do
        for s in raft-nosql etcd; do
            row="| $d ms | $s"
            for c in $CLIENTS; do
                j=$WORK/$s.d$d.c$c.json
                row+=" | $(field "$j" .throughput_ops_s) | $(fmt_ms "$(field "$j" .latency_us.p50)") | $(fmt_ms "$(field "$j" .latency_us.p99)")"
            done
            f=${FAILOVER[$s.$d]}
            echo "$row | $(echo "$f" | median) ($(echo "$f" | xargs | tr ' ' /)) |"
        done
    done
} >"$TABLE"
cat "$TABLE"
[ -z "$OUT" ] || cp "$TABLE" "$OUT"
