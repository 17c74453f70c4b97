#!/usr/bin/env bash
# Benchmark raft-nosql's DynamoDB API next to its native API and next to two
# single-process DynamoDB emulators, moto's server and dynalite, on this machine.
#
# Starts a 3-node raft-nosql cluster (release build, every log append fsynced before it is
# acknowledged), moto_server and dynalite, each in its own temp dir on free loopback ports,
# and runs the same workloads with the same load generator (`raft-nosql bench --json`)
# against four configurations, in alternation:
#
#   native      raft-nosql, REST API (PUT/GET /tables/bench/items), 3 nodes
#   dynamodb    raft-nosql, DynamoDB API (PutItem/GetItem on POST /), 3 nodes
#   moto        moto_server (moto[server] from tests/dynamodb/requirements.txt), 1 process
#   dynalite    dynalite (npm, tests/dynamodb/package.json), 1 process, in memory
#
# Each measurement is repeated REPEAT times; the table shows the mean and the range.
# Everything it starts is stopped on exit, by pid.
#
# The conditional workloads (WORKLOADS="write update transact"): `update` increments
# counters on HOT_KEYS items with optimistic locking, `transact` moves money between
# HOT_KEYS accounts with TransactWriteItems (DynamoDB API only: the REST API has no
# transactions, so native transact runs are skipped). A second table shows their
# conflicts, the bench's own check (no lost update, total balance unchanged) and their
# throughput next to plain puts (`write`) through the same API.
#
# Usage: scripts/bench-dynamodb.sh
# Environment:
#   DURATION=5         seconds measured per run
#   WARMUP=1           seconds of warm-up per run (not measured)
#   REPEAT=2           runs per measurement
#   KEYS=10000         key space
#   VALUE_SIZE=100     bytes per value
#   CLIENTS="1 64"     client counts
#   WORKLOADS="write read"
#   SYSTEMS="native dynamodb moto dynalite"   (moto and dynalite are installed and
#                      started only when listed)
#   HOT_KEYS=100       hot items of the update and transact workloads
#   OUT=path.md        also write the tables there
#   RAW_DIR=dir        keep every run's JSON report there
#   SKIP_BUILD=1       use the existing target/release/raft-nosql
#
# Needs: the Rust toolchain, python3 (venv), node and npm; installs moto and dynalite with
# the Makefile's targets (.venv, tests/dynamodb/node_modules), curl and jq with apt-get.
set -euo pipefail

DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
REPEAT=${REPEAT:-2}
KEYS=${KEYS:-10000}
VALUE_SIZE=${VALUE_SIZE:-100}
CLIENTS=${CLIENTS:-"1 64"}
WORKLOADS=${WORKLOADS:-"write read"}
SYSTEMS=${SYSTEMS:-"native dynamodb moto dynalite"}
HOT_KEYS=${HOT_KEYS:-100}
OUT=${OUT:-}
RAW_DIR=${RAW_DIR:-}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET_DIR/release/raft-nosql

log() { printf '[bench-dynamodb] %s\n' "$*" >&2; }
die() {
    log "error: $*"
    local f
    for f in "${WORK:-/nonexistent}"/*/*.out; do
        [ -s "$f" ] || continue
        log "--- last lines of $f"
        tail -n 15 "$f" >&2
    done
    exit 1
}

# ---------------------------------------------------------------- prerequisites
wants() { case " $SYSTEMS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
MOTO=$ROOT/.venv/bin/moto_server
DYNALITE=$ROOT/tests/dynamodb/node_modules/dynalite/cli.js
if wants moto; then
    log "installing moto (make .venv/.installed)"
    make -C "$ROOT" --quiet .venv/.installed >&2
    [ -x "$MOTO" ] || die "no moto_server at $MOTO"
fi
if wants dynalite; then
    log "installing dynalite (make tests/dynamodb/node_modules/.installed)"
    make -C "$ROOT" --quiet tests/dynamodb/node_modules/.installed >&2
    [ -f "$DYNALITE" ] || die "no dynalite at $DYNALITE"
fi

if [ -z "${SKIP_BUILD:-}" ]; then
    log "building raft-nosql (release)"
    (cd "$ROOT" && cargo build --release --quiet)
fi
[ -x "$BIN" ] || die "no release binary at $BIN"

# ---------------------------------------------------------------- bookkeeping
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-dynamodb.XXXXXX")
NOSQL_PIDS=()
# shellcheck source=scripts/bench-lib.sh
. "$ROOT/scripts/bench-lib.sh"
need curl jq

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

# ---------------------------------------------------------------- moto and dynalite
EMU_DIR=$WORK/emulators
mkdir -p "$EMU_DIR"
EMULATORS=""
if wants moto; then
    MOTO_PORT=$(free_port)
    "$MOTO" -H 127.0.0.1 -p "$MOTO_PORT" >"$EMU_DIR/moto.out" 2>&1 &
    PIDS+=($!)
    MOTO_PIDS=($!)
    # It answers any POST with some JSON once it listens.
    wait_for 60 "moto_server" curl -s -o /dev/null -X POST "http://127.0.0.1:$MOTO_PORT/"
    MOTO_VERSION=$("$ROOT/.venv/bin/python" -c 'import moto; print(moto.__version__)')
    log "moto up: 127.0.0.1:$MOTO_PORT ($MOTO_VERSION)"
    EMULATORS+="; moto $MOTO_VERSION"
fi
if wants dynalite; then
    DYNALITE_PORT=$(free_port)
    node "$DYNALITE" --host 127.0.0.1 --port "$DYNALITE_PORT" >"$EMU_DIR/dynalite.out" 2>&1 &
    PIDS+=($!)
    DYNALITE_PIDS=($!)
    wait_for 60 "dynalite" curl -s -o /dev/null -X POST "http://127.0.0.1:$DYNALITE_PORT/"
    DYNALITE_VERSION=$(node -p "require('$ROOT/tests/dynamodb/node_modules/dynalite/package.json').version")
    log "dynalite up: 127.0.0.1:$DYNALITE_PORT ($DYNALITE_VERSION)"
    EMULATORS+="; dynalite $DYNALITE_VERSION (in memory)"
fi

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
# the cores used by the server(s) and by the load generator to $RESULTS/SYSTEM.NAME.cpu.
run_one() {
    local system=$1 name=$2
    shift 2
    local pids
    case $system in
        native)
            pids=("${NOSQL_PIDS[@]}")
            set -- --target "$NOSQL_TARGETS" --table bench "$@"
            ;;
        dynamodb)
            pids=("${NOSQL_PIDS[@]}")
            set -- --target "$NOSQL_TARGETS" --api dynamodb --table bench_ddb "$@"
            ;;
        moto)
            pids=("${MOTO_PIDS[@]}")
            set -- --system dynamodb --target "127.0.0.1:$MOTO_PORT" "$@"
            ;;
        dynalite)
            pids=("${DYNALITE_PIDS[@]}")
            set -- --system dynamodb --target "127.0.0.1:$DYNALITE_PORT" "$@"
            ;;
    esac
    local json=$RESULTS/$system.$name.json
    case " $* " in
        *" --workload transact "*)
            if [ "$system" = native ]; then
                return 0    # the REST API has no transactions
            fi
            ;;
    esac
    local before after t
    before=$(cpu_ticks "${pids[@]}")
    local TIMEFORMAT='%U %S %R'
    t=$( { time "$BIN" bench --duration "$DURATION" --warmup "$WARMUP" \
        --keys "$KEYS" --value-size "$VALUE_SIZE" --hot-keys "$HOT_KEYS" --json "$@" \
        >"$json" 2>"$RESULTS/$system.$name.err"; } 2>&1 ) || {
        log "$system $name failed: $(tail -3 "$RESULTS/$system.$name.err")"
    }
    after=$(cpu_ticks "${pids[@]}")
    read -r user sys real <<<"$t"
    awk -v d=$((after - before)) -v hz="$CLK_TCK" -v u="$user" -v s="$sys" -v r="$real" \
        'BEGIN { printf "%.2f %.2f\n", d / hz / r, (u + s) / r }' >"$RESULTS/$system.$name.cpu"
    [ -z "$RAW_DIR" ] || cp "$json" "$RAW_DIR/$system.$name.json"
    log "$(printf '%-9s %-16s %s' "$system" "$name" \
        "$(jq -r '"\(.throughput_ops_s) ops/s, p50 \(.latency_us.p50) µs, p99 \(.latency_us.p99) µs, \(.errors) errors, \(.redirects) forwarded, \(.conflicts) conflicts\(if .check then ", check " + (if .check.ok then "ok" else "FAILED" end) else "" end)"' "$json" 2>/dev/null || echo failed)")"
}

MEASURES=()
for w in $WORKLOADS; do
    for c in $CLIENTS; do
        MEASURES+=("$w c=$c|--workload $w --clients $c")
    done
done

for r in $(seq "$REPEAT"); do
    for m in "${MEASURES[@]}"; do
        name=${m%%|*}
        args=${m#*|}
        file=$(echo "$name" | tr ' =:' '___').$r
        for s in $SYSTEMS; do
            # shellcheck disable=SC2086  # word splitting of the argument list is intended
            run_one "$s" "$file" $args
        done
    done
done

# ---------------------------------------------------------------- the table
# stat SYSTEM MEASURE JQ [SCALE UNIT FORMAT] : "mean (min-max)" of a field over the
# repeats (divided by SCALE, printed with FORMAT), or "-".
stat() {
    local f vals=()
    for r in $(seq "$REPEAT"); do
        f=$RESULTS/$1.$2.$r.json
        v=$(jq -r "$3 // empty" "$f" 2>/dev/null || true)
        [ -z "$v" ] || vals+=("$v")
    done
    ((${#vals[@]})) || { echo "-"; return; }
    printf '%s\n' "${vals[@]}" | awk -v scale="${4:-1}" -v unit="${5:-}" -v fmt_arg="${6:-}" '
        { x = $1 / scale; s += x; if (NR == 1 || x < lo) lo = x; if (NR == 1 || x > hi) hi = x }
        END {
            fmt = (fmt_arg != "") ? fmt_arg : (scale == 1) ? "%.0f" : "%.2f"
            m = sprintf(fmt, s / NR)
            if (NR > 1) printf "%s%s (" fmt "–" fmt ")\n", m, unit, lo, hi
            else printf "%s%s\n", m, unit
        }'
}
mean() {
    local r v s=0 n=0
    for r in $(seq "$REPEAT"); do
        v=$(jq -r "$3 // empty" "$RESULTS/$1.$2.$r.json" 2>/dev/null || true)
        [ -z "$v" ] || { s=$(awk -v a="$s" -v b="$v" 'BEGIN { print a + b }'); n=$((n + 1)); }
    done
    ((n)) && awk -v s="$s" -v n="$n" 'BEGIN { print s / n }' || echo ""
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else printf "%.2f", a / b }'; }

TABLE=$WORK/table.md
{
    echo "$(nproc) cores, ${DURATION}s per run (+${WARMUP}s warm-up), $REPEAT runs each (mean, range in brackets), ${VALUE_SIZE}-byte values, ${KEYS} keys, ${HOT_KEYS} hot keys (update, transact), loopback, eventual reads; raft-nosql: 3 nodes, fsync${EMULATORS}."
    echo
    printf '| workload |'
    for s in $SYSTEMS; do printf ' %s ops/s | %s p99 |' "$s" "$s"; done
    echo " DynamoDB / native | DynamoDB / best emulator |"
    printf '|---|'
    for s in $SYSTEMS; do printf -- '---:|---:|'; done
    echo "---:|---:|"
    for m in "${MEASURES[@]}"; do
        name=${m%%|*}
        file=$(echo "$name" | tr ' =:' '___')
        printf '| %s |' "$name"
        for s in $SYSTEMS; do
            printf ' %s | %s |' "$(stat "$s" "$file" .throughput_ops_s)" "$(stat "$s" "$file" .latency_us.p99 1000 ' ms')"
        done
        d=$(mean dynamodb "$file" .throughput_ops_s)
        n=$(mean native "$file" .throughput_ops_s)
        mo=$(mean moto "$file" .throughput_ops_s)
        dl=$(mean dynalite "$file" .throughput_ops_s)
        best=$(awk -v a="$mo" -v b="$dl" 'BEGIN { if (a == "" && b == "") print ""; else print (a + 0 > b + 0 ? a : b) }')
        echo " $(ratio "$d" "$n") | $(ratio "$d" "$best") |"
    done
    echo
    echo "Errors, forwarded writes and cores used (server / load generator, preload and warm-up included), first run:"
    echo
    printf '| workload |'
    for s in $SYSTEMS; do printf ' %s |' "$s"; done
    echo
    printf '|---|'
    for s in $SYSTEMS; do printf -- '---|'; done
    echo
    for m in "${MEASURES[@]}"; do
        name=${m%%|*}
        file=$(echo "$name" | tr ' =:' '___').1
        printf '| %s |' "$name"
        for s in $SYSTEMS; do
            printf ' %s err, %s fwd, %s cores |' "$(jq -r .errors "$RESULTS/$s.$file.json" 2>/dev/null || echo -)" \
                "$(jq -r .redirects "$RESULTS/$s.$file.json" 2>/dev/null || echo -)" \
                "$({ tr ' ' / <"$RESULTS/$s.$file.cpu"; } 2>/dev/null || echo -)"
        done
        echo
    done

    # The conditional workloads: conflicts, the bench's check, and the cost over puts.
    if [[ " $WORKLOADS " == *" update "* || " $WORKLOADS " == *" transact "* ]]; then
        echo
        echo "Conditional workloads (${HOT_KEYS} hot keys): successful ops/s, latency of a successful op (retries included), conflicts per successful op, and ops/s relative to plain puts (write) through the same API at the same client count:"
        echo
        echo "| workload | system | ops/s | p50 | p99 | conflicts / ok | refused | errors | check | vs write |"
        echo "|---|---|---:|---:|---:|---:|---:|---:|---|---:|"
        for m in "${MEASURES[@]}"; do
            name=${m%%|*}
            case $name in update*|transact*) ;; *) continue ;; esac
            file=$(echo "$name" | tr ' =:' '___')
            wfile=$(echo "write ${name#* }" | tr ' =:' '___')
            for s in $SYSTEMS; do
                [ -f "$RESULTS/$s.$file.1.json" ] || continue
                checks=$(for r in $(seq "$REPEAT"); do
                    jq -r 'if .check == null then "-" elif .check.ok then "ok" else "FAILED" end' \
                        "$RESULTS/$s.$file.$r.json" 2>/dev/null || echo "-"
                done | sort -u | paste -sd/ -)
                printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$s" \
                    "$(stat "$s" "$file" .throughput_ops_s)" \
                    "$(stat "$s" "$file" .write.latency_us.p50 1000 ' ms')" \
                    "$(stat "$s" "$file" .write.latency_us.p99 1000 ' ms')" \
                    "$(stat "$s" "$file" 'if .write.ok > 0 then .conflicts / .write.ok else null end' 1 '' '%.2f')" \
                    "$(stat "$s" "$file" .refused)" \
                    "$(stat "$s" "$file" .errors)" \
                    "$checks" \
                    "$(ratio "$(mean "$s" "$file" .throughput_ops_s)" "$(mean "$s" "$wfile" .throughput_ops_s)")"
            done
        done
    fi
} >"$TABLE"

cat "$TABLE"
[ -z "$OUT" ] || cp "$TABLE" "$OUT"
