# Shared by the benchmark scripts (bench-vs-etcd.sh, bench-dynamodb.sh,
# bench-disk-etcd.sh): bookkeeping of the processes a run starts, free loopback ports,
# polling with a deadline, and a 3-member etcd. Source it
# after setting WORK (the run's temp dir) and defining die(); add every pid started to
# PIDS: the EXIT trap stops them all and removes WORK.

PIDS=()         # every process this script started

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        # Give each up to 10 s to exit cleanly, then SIGKILL it.
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A TCP port on 127.0.0.1 that nothing listens on and that this script has not handed out.
# Picked below the kernel's ephemeral range, so no outgoing connection holds it either.
USED_PORTS=" "
EPHEMERAL_LOW=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
PORT_LOW=10000
PORT_SPAN=$((EPHEMERAL_LOW > PORT_LOW + 1000 ? EPHEMERAL_LOW - PORT_LOW : 20000))
free_port() {
    local p
    while :; do
        p=$((PORT_LOW + RANDOM % PORT_SPAN))
        case "$USED_PORTS" in *" $p "*) continue ;; esac
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            USED_PORTS+="$p "
            echo "$p"
            return
        fi
    done
}

# Polls a command (up to $1 seconds) until it succeeds.
wait_for() {
    local secs=$1 what=$2
    shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "timed out after ${secs}s waiting for $what"
        sleep 0.1
    done
}

# need CMD[:PACKAGE]...: installs with apt-get the Debian package of every command that
# is missing (PACKAGE defaults to CMD's name).
need() {
    local missing=() want cmd
    for want in "$@"; do
        cmd=${want%%:*}
        command -v "$cmd" >/dev/null 2>&1 || missing+=("${want#*:}")
    done
    ((${#missing[@]})) || return 0
    command -v apt-get >/dev/null 2>&1 || die "need ${missing[*]} and there is no apt-get"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    log "installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# install_etcd: installs Debian's etcd-server (etcd 3.4), curl and jq with apt-get when
# missing, and sets ETCD to the etcd binary.
install_etcd() {
    need etcd:etcd-server curl jq
    ETCD=$(command -v etcd || echo /usr/bin/etcd)
    [ -x "$ETCD" ] || die "etcd not found after install"
    log "etcd: $("$ETCD" --version 2>/dev/null | head -1)"
}

# start_etcd DIR: a 3-member etcd cluster on free loopback ports, member i's data in
# DIR/m<i> and its log in DIR/m<i>.log; fsync on (etcd's default), a 4 GiB backend quota
# (ETCD_QUOTA overrides). Sets ETCD_CLIENT (client ports), ETCD_TARGETS (host:port,...)
# and ETCD_PIDS, and returns once every member answers /health.
start_etcd() {
    local dir=$1 i initial=""
    mkdir -p "$dir"
    ETCD_CLIENT=()
    ETCD_PEER=()
    ETCD_PIDS=()
    for i in 0 1 2; do
        ETCD_CLIENT+=("$(free_port)")
        ETCD_PEER+=("$(free_port)")
    done
    for i in 0 1 2; do
        initial+="${initial:+,}m$i=http://127.0.0.1:${ETCD_PEER[$i]}"
    done
    for i in 0 1 2; do
        "$ETCD" \
            --name "m$i" \
            --data-dir "$dir/m$i" \
            --listen-client-urls "http://127.0.0.1:${ETCD_CLIENT[$i]}" \
            --advertise-client-urls "http://127.0.0.1:${ETCD_CLIENT[$i]}" \
            --listen-peer-urls "http://127.0.0.1:${ETCD_PEER[$i]}" \
            --initial-advertise-peer-urls "http://127.0.0.1:${ETCD_PEER[$i]}" \
            --initial-cluster "$initial" \
            --initial-cluster-token "bench-$$" \
            --initial-cluster-state new \
            --quota-backend-bytes "${ETCD_QUOTA:-$((4 * 1024 * 1024 * 1024))}" \
            --logger zap --log-level warn \
            >"$dir/m$i.log" 2>&1 &
        PIDS+=($!)
        ETCD_PIDS+=($!)
    done
    ETCD_TARGETS=""
    for i in 0 1 2; do
        ETCD_TARGETS+="${ETCD_TARGETS:+,}127.0.0.1:${ETCD_CLIENT[$i]}"
        wait_for 60 "etcd member $i" sh -c "curl -sf http://127.0.0.1:${ETCD_CLIENT[$i]}/health | grep -q true"
    done
}
