# Shared by the benchmark scripts (bench-vs-etcd.sh, bench-dynamodb.sh): bookkeeping of
# the processes a run starts, free loopback ports, and polling with a deadline. Source it
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
