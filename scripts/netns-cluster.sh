#!/usr/bin/env bash
# A raft-nosql cluster across a real network on one machine: every node in its own
# network namespace, with its own address on a bridge, and faults made of real packets
# (delayed, dropped, cut off) in the kernel instead of the nodes' own fault injection.
# `--help` says how to use it.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/netns-cluster.sh COMMAND [ARGS]      (as root; needs `ip`, installs
                                                   iproute2/nftables/iptables if missing)

Runs each node of a raft-nosql cluster in its own network namespace, with its own address
on a bridge, and breaks the network between them with real packet loss and delay.

Commands:
  up N                   create the namespaces, write a cluster config, start one
                         `raft-nosql node --id i` per namespace, initialise the cluster
                         and wait for a leader (N = 1..50)
  delay NODE MS [JITTER] delay every packet NODE sends by MS ms (+/- JITTER ms, uniform);
                         `delay NODE 0` removes it
  loss NODE PCT          drop PCT % (0-100) of the packets NODE sends; 0 removes it
  partition NODE         drop every packet between NODE and the other nodes (nftables,
                         both ways); clients on this machine still reach it
  heal                   remove every partition (delays and losses stay: set them to 0)
  kill NODE              SIGKILL the node's process
  start NODE             start a killed node again (same data)
  exec NODE CMD...       run CMD inside NODE's namespace (e.g. `exec 0 ping 10.77.0.2`)
  status                 each node: address, pid, role, term, leader, faults
  addr NODE              the node's host:port
  targets                every node's host:port, comma-separated
  config                 the path of the cluster config
  leader [--wait] [--not NODE]
                         the id of the leader the nodes agree on (exit 1 if none);
                         --wait: wait up to 30 s for one; --not NODE: one other than NODE
                         that the other nodes agree on (NODE cut off or down)
  down                   stop the nodes and remove every namespace, link and rule

Environment:
  NETNS_PREFIX   name prefix of this run's namespaces and links (default rn; 1-8 of
                 [a-z0-9], starting with a letter): several runs side by side need
                 different prefixes
  NETNS_RUN_DIR  where the config, data and logs go (default /tmp/netns-cluster-PREFIX);
                 `down` leaves the logs there
  NETNS_BIN      the raft-nosql binary (default ${CARGO_TARGET_DIR:-target}/debug/raft-nosql)
  NETNS_SUBNET   use 10.SUBNET.0.0/24 (default: the first free one of 10.200-254)
  NETNS_PORT     the nodes' port (default 8100: every node has its own address)
  NETNS_OWNER_PID  (up) remove everything as soon as this process is gone (for tests)

Node i has address 10.S.0.(i+1); this machine is 10.S.0.254 on the same bridge, so the
CLI reaches any node: raft-nosql status --target-addr "$(scripts/netns-cluster.sh addr 0)".
Delay and loss use `tc netem` when the kernel has it; otherwise loss is an nftables rule
(numgen random) and delay a user-space delayer (scripts/netns-delay.py, NFQUEUE).
EOF
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
self="$here/$(basename "${BASH_SOURCE[0]}")"
prefix=${NETNS_PREFIX:-rn}
run=${NETNS_RUN_DIR:-/tmp/netns-cluster-$prefix}
bin=${NETNS_BIN:-${CARGO_TARGET_DIR:-$repo/target}/debug/raft-nosql}
port=${NETNS_PORT:-8100}

die() { echo "netns-cluster: $*" >&2; exit 2; }

[[ $prefix =~ ^[a-z][a-z0-9]{0,7}$ ]] || die "NETNS_PREFIX=$prefix: 1-8 of [a-z0-9], starting with a letter"
[[ $port =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] || die "NETNS_PORT=$port is not a port"

# Names: every namespace, link and table of this run starts with the prefix.
hub_ns="$prefix-hub"                 # holds the bridge
node_ns() { echo "$prefix-n$1"; }    # node i's namespace
bridge="$prefix-br"
host_if="$prefix-host"               # this machine's end of the link to the bridge
table="${prefix}_faults"             # nftables table (inet) in each node's namespace

# ---------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------
need_root() { [ "$(id -u)" -eq 0 ] || die "needs root (network namespaces): run it with sudo"; }

apt_install() {
  command -v apt-get >/dev/null || die "$1 is missing and there is no apt-get to install $2"
  echo "netns-cluster: installing $2" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; } ||
    die "could not install $2"
}
need() { command -v "$1" >/dev/null || apt_install "$1" "$2"; }

# ---------------------------------------------------------------------------------------
# State of the run (files in $run)
# ---------------------------------------------------------------------------------------
nodes() { cat "$run/nodes" 2>/dev/null || die "no cluster '$prefix' is up (no $run/nodes); start one with: $0 up 3"; }
subnet() { cat "$run/subnet"; }
ip_of() { echo "10.$(subnet).0.$(($1 + 1))"; }
addr_of() { echo "$(ip_of "$1"):$port"; }
check_node() {
  local n
  n=$(nodes)
  [[ $1 =~ ^[0-9]+$ ]] && [ "$1" -lt "$n" ] || die "no node '$1': nodes are 0..$((n - 1))"
}
node_log() { echo "$run/data/node$1/node.log"; }
pid_of() { cat "$run/node$1.pid" 2>/dev/null || true; }
# A killed process stays a zombie until its parent (often init) reaps it: that is dead.
alive() {
  local st
  [ -n "$1" ] && st=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $st != Z* ]]
}
state() { cat "$run/$1" 2>/dev/null || echo "${2:-}"; }

curl_q() { curl -s --noproxy '*' --max-time "${CURL_TIME:-2}" "$@"; }
node_status() { curl_q "http://$(addr_of "$1")/status" || true; }
field() { python3 -c 'import json,sys
try: v = json.loads(sys.argv[1]).get(sys.argv[2])
except Exception: v = None
print("" if v is None else v)' "$1" "$2"; }

# ---------------------------------------------------------------------------------------
# The cluster config: the one place it is written.
# ---------------------------------------------------------------------------------------
write_config() {
  local n=$1 i
  # The nodes listen on bridge addresses, not loopback: they need a cluster secret (or
  # --insecure). One per run, made as the README's "Running on several hosts" makes it.
  [ -s "$run/secret" ] || (umask 077 && head -c 32 /dev/urandom | base64 >"$run/secret")
  {
    echo "# Written by scripts/netns-cluster.sh for run '$prefix': node i listens on"
    echo "# 10.$(subnet).0.(i+1), in its own network namespace $prefix-n<i>."
    echo "data_root = \"$run/data\""
    echo 'log_level = "info"'
    echo
    echo '[security]'
    echo "secret_file = \"$run/secret\""
    echo
    for ((i = 0; i < n; i++)); do
      printf '[[nodes]]\nid = %d\naddr = "%s"\n\n' "$i" "$(addr_of "$i")"
    done
  } >"$run/cluster.toml"
}

# ---------------------------------------------------------------------------------------
# Nodes
# ---------------------------------------------------------------------------------------
start_node() {
  local i=$1 pid
  pid=$(pid_of "$i")
  if alive "$pid"; then die "node $i is running (pid $pid)"; fi
  # `ip netns exec` execs the binary: $! is the node's pid.
  # Its output goes where the supervisor puts it, so that `raft-nosql logs` finds it.
  mkdir -p "$run/data/node$i"
  ip netns exec "$(node_ns "$i")" "$bin" node --id "$i" --config "$run/cluster.toml" \
    </dev/null >>"$(node_log "$i")" 2>&1 &
  echo $! >"$run/node$i.pid"
}

wait_answers() {
  local i=$1 _
  for _ in $(seq 1 300); do
    [ -n "$(node_status "$i")" ] && return 0
    alive "$(pid_of "$i")" || die "node $i exited; its log: $(node_log "$i")"
    sleep 0.1 # poll interval, bounded by the loop count
  done
  die "node $i does not answer at $(addr_of "$i") after 30 s; its log: $(node_log "$i")"
}

# The leader every answering node (but node $1, if given) names, if it says it leads.
# Agreement matters: a leader deposed by a newer election may still call itself Leader
# for a moment, and a partitioned one does until the partition heals.
leader_id() {
  local n i l st not=${1:-} agreed=""
  n=$(nodes)
  for ((i = 0; i < n; i++)); do
    [ "$i" = "$not" ] && continue
    st=$(node_status "$i")
    [ -n "$st" ] || continue
    l=$(field "$st" leader_id)
    [ -n "$l" ] || return 1
    [ -z "$agreed" ] || [ "$agreed" = "$l" ] || return 1
    agreed=$l
  done
  [ -n "$agreed" ] && [ "$agreed" != "$not" ] && [ "$agreed" -lt "$n" ] || return 1
  [ "$(field "$(node_status "$agreed")" role)" = Leader ] || return 1
  echo "$agreed"
}

# ---------------------------------------------------------------------------------------
# Faults
# ---------------------------------------------------------------------------------------
# Whether this kernel has sch_netem (probed once per run in a throwaway namespace).
has_netem() {
  if [ ! -f "$run/netem" ]; then
    local probe="$prefix-probe"
    ip netns add "$probe"
    if ip netns exec "$probe" tc qdisc add dev lo root netem delay 1ms 2>/dev/null; then echo yes; else echo no; fi >"$run/netem"
    ip netns del "$probe"
  fi
  [ "$(cat "$run/netem")" = yes ]
}

# Applies node i's delay and loss: netem if the kernel has it, else the delayer (and
# the loss rule of apply_rules).
apply_shaping() {
  local i=$1 ns delay jitter loss
  ns=$(node_ns "$i")
  read -r delay jitter <<<"$(state "delay$i" "0 0")"
  loss=$(state "loss$i" 0)
  if has_netem; then
    if [ "$delay" = 0 ] && [ "$loss" = 0 ]; then
      ip netns exec "$ns" tc qdisc del dev eth0 root 2>/dev/null || true
    else
      ip netns exec "$ns" tc qdisc replace dev eth0 root netem \
        delay "${delay}ms" "${jitter}ms" loss "${loss}%"
    fi
  else
    set_delayer "$i" "$delay" "$jitter"
    apply_rules "$i"
  fi
}

# Rebuilds node i's nftables table: the loss rule (without netem) and the partition.
apply_rules() {
  local i=$1 ns loss others="" j n rules_out="" rules_in=""
  ns=$(node_ns "$i")
  loss=$(state "loss$i" 0)
  n=$(nodes)
  for ((j = 0; j < n; j++)); do
    [ "$j" -ne "$i" ] && others+="${others:+, }$(ip_of "$j")"
  done
  if [ "$loss" != 0 ] && ! has_netem; then
    rules_out+="oifname \"eth0\" numgen random mod 100 < $loss drop"$'\n'
  fi
  if grep -qx "$i" "$run/partitioned" 2>/dev/null && [ -n "$others" ]; then
    rules_out+="ip daddr { $others } drop"$'\n'
    rules_in+="ip saddr { $others } drop"$'\n'
  fi
  need nft nftables
  ip netns exec "$ns" nft delete table inet "$table" 2>/dev/null || true
  [ -n "$rules_out$rules_in" ] || return 0
  ip netns exec "$ns" nft -f - <<EOF
table inet $table {
  chain out {
    type filter hook output priority 0; policy accept;
    $rules_out
  }
  chain in {
    type filter hook input priority 0; policy accept;
    $rules_in
  }
}
EOF
}

# Without netem: node i's outgoing packets go through NFQUEUE 0 to a delayer process.
set_delayer() {
  local i=$1 delay=$2 jitter=$3 ns pid
  ns=$(node_ns "$i")
  pid=$(state "delayer$i.pid")
  if alive "$pid"; then
    kill "$pid"
    while alive "$pid"; do sleep 0.05; done # the delayer releases what it holds, then exits
  fi
  rm -f "$run/delayer$i.pid"
  [ "$delay" = 0 ] && [ "$jitter" = 0 ] && return 0
  need iptables-legacy iptables
  need python3 python3
  if ! ip netns exec "$ns" iptables-legacy -C OUTPUT -o eth0 -j NFQUEUE --queue-num 0 --queue-bypass 2>/dev/null; then
    ip netns exec "$ns" iptables-legacy -A OUTPUT -o eth0 -j NFQUEUE --queue-num 0 --queue-bypass
  fi
  : >"$run/delayer$i.log"
  ip netns exec "$ns" python3 "$here/netns-delay.py" --queue 0 --delay "$delay" --jitter "$jitter" \
    </dev/null >>"$run/delayer$i.log" 2>&1 &
  pid=$!
  echo "$pid" >"$run/delayer$i.pid"
  local _
  for _ in $(seq 1 100); do
    grep -q '^delaying' "$run/delayer$i.log" && return 0
    alive "$pid" || die "the delayer of node $i failed: $(cat "$run/delayer$i.log")"
    sleep 0.05 # poll interval, bounded by the loop count
  done
  die "the delayer of node $i did not start: $run/delayer$i.log"
}

is_number() { [[ $1 =~ ^[0-9]+([.][0-9]+)?$ ]]; }

# ---------------------------------------------------------------------------------------
# Up and down
# ---------------------------------------------------------------------------------------
pick_subnet() {
  local s used
  used=$(ip -4 -o addr show; ip -4 route show)
  if [ -n "${NETNS_SUBNET:-}" ]; then
    [[ $NETNS_SUBNET =~ ^[0-9]+$ ]] && [ "$NETNS_SUBNET" -le 255 ] || die "NETNS_SUBNET=$NETNS_SUBNET: a number 0-255"
    ! grep -q "10\.$NETNS_SUBNET\.0\." <<<"$used" || die "10.$NETNS_SUBNET.0.0/24 is in use on this machine"
    echo "$NETNS_SUBNET"
    return
  fi
  for s in $(seq 200 254); do
    grep -q "10\.$s\.0\." <<<"$used" || { echo "$s"; return; }
  done
  die "no free subnet among 10.200-254.0.0/24"
}

cmd_up() {
  local n=${1:-}
  [[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 50 ] || die "up N: N is the number of nodes, 1-50 (got '${n}')"
  need_root
  need ip iproute2
  need curl curl
  need python3 python3
  [ -x "$bin" ] || die "no binary at $bin: run 'cargo build' (or set NETNS_BIN)"
  bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
  if ip netns list | grep -q "^$hub_ns\b"; then
    die "a cluster named '$prefix' is up already: '$0 down' first, or set NETNS_PREFIX"
  fi
  rm -rf "$run"
  mkdir -p "$run"
  echo "$n" >"$run/nodes"
  echo "$bin" >"$run/bin"
  if [ -n "${NETNS_OWNER_PID:-}" ]; then
    # A watcher in its own session: when the owner is gone (even SIGKILLed, even in the
    # middle of this), it runs `down`.
    NETNS_PREFIX=$prefix NETNS_RUN_DIR=$run setsid bash -c '
      echo $$ >"$1/reaper.pid"
      while kill -0 "$2" 2>/dev/null; do sleep 0.5; done
      exec "$3" down' reaper "$run" "$NETNS_OWNER_PID" "$self" </dev/null >>"$run/reaper.log" 2>&1 &
  fi
  # From here on a failure (or Ctrl+C) removes what was made.
  trap 'echo "netns-cluster: up failed, removing what it made" >&2; cmd_down >/dev/null 2>&1' EXIT
  trap 'exit 130' INT TERM

  # The bridge lives in its own namespace; this machine joins it through one link.
  # Picking the subnet and taking it is one step under a lock (runs side by side).
  exec 9>/run/netns-cluster.lock
  flock 9
  local s
  s=$(pick_subnet)
  echo "$s" >"$run/subnet"
  ip netns add "$hub_ns"
  ip -n "$hub_ns" link add "$bridge" type bridge
  ip -n "$hub_ns" link set "$bridge" up
  ip link add "$host_if" type veth peer name "$prefix-hup"
  ip link set "$prefix-hup" netns "$hub_ns"
  ip -n "$hub_ns" link set "$prefix-hup" master "$bridge" up
  ip addr add "10.$s.0.254/24" dev "$host_if"
  ip link set "$host_if" up
  flock -u 9
  exec 9>&-

  local i ns
  for ((i = 0; i < n; i++)); do
    ns=$(node_ns "$i")
    ip netns add "$ns"
    ip link add "$prefix-e$i" type veth peer name "$prefix-v$i"
    ip link set "$prefix-v$i" netns "$hub_ns"
    ip -n "$hub_ns" link set "$prefix-v$i" master "$bridge" up
    ip link set "$prefix-e$i" netns "$ns"
    ip -n "$ns" link set "$prefix-e$i" name eth0
    ip -n "$ns" addr add "$(ip_of "$i")/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
  done

  write_config "$n"
  for ((i = 0; i < n; i++)); do start_node "$i"; done
  for ((i = 0; i < n; i++)); do wait_answers "$i"; done
  "$bin" --config "$run/cluster.toml" cluster init --node 0 >/dev/null || die "cluster init on node 0 failed"
  local _ l=""
  for _ in $(seq 1 300); do
    l=$(leader_id) && break
    sleep 0.1 # poll interval, bounded by the loop count
  done
  [ -n "$l" ] || die "no leader after 30 s; logs in $run"

  trap - EXIT INT TERM
  echo "cluster '$prefix' is up: $n nodes on 10.$s.0.0/24 (this machine is 10.$s.0.254), leader: node $l"
  echo "  targets: $(cmd_targets)"
  echo "  config:  $run/cluster.toml   logs: raft-nosql logs --config $run/cluster.toml"
}

cmd_down() {
  local pid i f ns
  [ "$(id -u)" -eq 0 ] || die "needs root: run it with sudo"
  pid=$(state reaper.pid)
  if [ -n "$pid" ] && [ "$pid" != "$$" ] && alive "$pid"; then kill "$pid" 2>/dev/null || true; fi
  for f in "$run"/delayer*.pid "$run"/node*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    if alive "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
    rm -f "$f"
  done
  # Every namespace of this run, whether or not the state files are still there; any
  # process still inside one was started by this run.
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$prefix-(hub|n[0-9]+|probe)$" || true); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  ip link del "$host_if" 2>/dev/null || true
  rm -f "$run/reaper.pid" "$run/partitioned" "$run"/delay[0-9]* "$run"/loss[0-9]* "$run/nodes" "$run/subnet" "$run/netem"
  echo "cluster '$prefix' is down: namespaces, links and rules removed (logs stay in $run)"
}

# ---------------------------------------------------------------------------------------
# Other commands
# ---------------------------------------------------------------------------------------
cmd_status() {
  local n i st pid faults
  n=$(nodes)
  printf '%-4s %-20s %-8s %-9s %-5s %-6s %s\n' node address pid role term leader faults
  for ((i = 0; i < n; i++)); do
    pid=$(pid_of "$i")
    alive "$pid" || pid="down"
    st=$(node_status "$i")
    faults=""
    read -r d j <<<"$(state "delay$i" "0 0")"
    [ "$d" != 0 ] && faults+="delay ${d}ms+/-${j}ms "
    [ "$(state "loss$i" 0)" != 0 ] && faults+="loss $(state "loss$i")% "
    grep -qx "$i" "$run/partitioned" 2>/dev/null && faults+="partitioned "
    printf '%-4s %-20s %-8s %-9s %-5s %-6s %s\n' "$i" "$(addr_of "$i")" "$pid" \
      "$(field "$st" role)" "$(field "$st" term)" "$(field "$st" leader_id)" "${faults:--}"
  done
}

cmd_targets() {
  local n i out=""
  n=$(nodes)
  for ((i = 0; i < n; i++)); do out+="${out:+,}$(addr_of "$i")"; done
  echo "$out"
}

main() {
  local cmd=${1:-}
  [ $# -gt 0 ] && shift
  case $cmd in
    -h | --help | help) usage ;;
    up) cmd_up "$@" ;;
    down) cmd_down ;;
    delay)
      [ $# -ge 2 ] && [ $# -le 3 ] || die "usage: delay NODE MS [JITTER]"
      check_node "$1"; need_root
      is_number "$2" && is_number "${3:-0}" || die "delay: MS and JITTER are numbers of milliseconds"
      python3 -c 'import sys; sys.exit(0 if float(sys.argv[2]) <= float(sys.argv[1]) <= 10000 else 1)' "$2" "${3:-0}" ||
        die "delay: need JITTER <= MS <= 10000"
      echo "$2 ${3:-0}" >"$run/delay$1"
      apply_shaping "$1"
      if [ "$2" = 0 ]; then echo "node $1: no delay"; else echo "node $1: outgoing packets delayed ${2} ms +/- ${3:-0} ms"; fi ;;
    loss)
      [ $# -eq 2 ] || die "usage: loss NODE PCT"
      check_node "$1"; need_root
      [[ $2 =~ ^[0-9]+$ ]] && [ "$2" -le 100 ] || die "loss: PCT is a whole percentage 0-100"
      echo "$2" >"$run/loss$1"
      apply_shaping "$1"
      echo "node $1: ${2}% of outgoing packets dropped" ;;
    partition)
      [ $# -eq 1 ] || die "usage: partition NODE"
      check_node "$1"; need_root
      grep -qx "$1" "$run/partitioned" 2>/dev/null || echo "$1" >>"$run/partitioned"
      apply_rules "$1"
      echo "node $1: cut off from the other nodes ('heal' undoes it)" ;;
    heal)
      need_root
      local n i
      n=$(nodes)
      rm -f "$run/partitioned"
      for ((i = 0; i < n; i++)); do apply_rules "$i"; done
      echo "healed: no partitions" ;;
    kill)
      [ $# -eq 1 ] || die "usage: kill NODE"
      check_node "$1"; need_root
      local pid
      pid=$(pid_of "$1")
      alive "$pid" || die "node $1 is not running"
      kill -9 "$pid"
      while alive "$pid"; do sleep 0.05; done
      rm -f "$run/node$1.pid"
      echo "node $1 killed (pid $pid)" ;;
    start)
      [ $# -eq 1 ] || die "usage: start NODE"
      check_node "$1"; need_root
      bin=$(cat "$run/bin")
      start_node "$1"
      wait_answers "$1"
      echo "node $1 started (pid $(pid_of "$1"))" ;;
    exec)
      [ $# -ge 2 ] || die "usage: exec NODE CMD..."
      check_node "$1"; need_root
      local ns
      ns=$(node_ns "$1")
      shift
      exec ip netns exec "$ns" "$@" ;;
    status) [ $# -eq 0 ] || die "usage: status"; cmd_status ;;
    addr) [ $# -eq 1 ] || die "usage: addr NODE"; check_node "$1"; addr_of "$1" ;;
    targets) [ $# -eq 0 ] || die "usage: targets"; cmd_targets ;;
    config) [ $# -eq 0 ] || die "usage: config"; nodes >/dev/null; echo "$run/cluster.toml" ;;
    leader)
      local wait=0 not="" _
      while [ $# -gt 0 ]; do
        case $1 in
          --wait) wait=1; shift ;;
          --not) [ $# -ge 2 ] || die "usage: leader [--wait] [--not NODE]"; check_node "$2"; not=$2; shift 2 ;;
          *) die "usage: leader [--wait] [--not NODE]" ;;
        esac
      done
      if [ $wait = 0 ]; then leader_id "$not" || { echo "no leader" >&2; exit 1; }; return; fi
      for _ in $(seq 1 300); do
        leader_id "$not" && return 0
        sleep 0.1 # poll interval, bounded by the loop count
      done
      echo "no leader${not:+ other than node $not} after 30 s" >&2
      exit 1 ;;
    "") usage >&2; exit 2 ;;
    *) die "unknown command '$cmd' (see --help)" ;;
  esac
}

main "$@"
