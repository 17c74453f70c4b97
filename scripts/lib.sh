# Shared by the scripts: print command lines people can copy.
#
# shell_line ARG...  prints the arguments as one command line that a POSIX shell splits
# back into the same words: plain words as they are, anything else in single quotes
# (a single quote inside becomes '\''). The same rule as `src/cli/quote.rs`; the tests
# check both against a real shell.
shell_line() {
  local out=() a q="'" esc="'\\''"
  for a in "$@"; do
    if [[ -n $a && $a =~ ^[A-Za-z0-9_./:,=@%+-]+$ ]]; then
      out+=("$a")
    else
      out+=("'${a//$q/$esc}'")
    fi
  done
  printf '%s' "${out[*]}"
}

# default_bin: the release binary if built, else the debug one (measurement scripts).
# check_bin: exits 2 unless $bin is an executable.
default_bin() { if [ -x target/release/raft-nosql ]; then echo target/release/raft-nosql; else echo target/debug/raft-nosql; fi; }
check_bin() { [ -x "$bin" ] || { echo "no binary at $bin: run 'make build' or 'make release'" >&2; exit 2; }; }

# A throwaway 3-node cluster for measurement scripts: free loopback ports, data in a temp
# dir, removed (and the cluster stopped) when the script exits. Needs $bin set.
#   temp_cluster         sets $dir, $cfg and the ports ${ports[0..2]} (nodes), ${ports[3]}
#                        (supervisor), starts the cluster and waits for a leader
#   now / since T        wall-clock seconds, and seconds since T (one decimal)
#   status N             node N's /status JSON ("" if it does not answer)
#   field JSON KEY       one top-level field of a JSON object ("" if absent)
#   leader_of            the leader id node 0..2 agree on first ("" if none yet)
temp_cluster() {
  dir=$(mktemp -d -t raft-nosql.XXXXXX)
  ports=($(python3 -c 'import socket
ss=[socket.socket() for _ in range(4)]
for s in ss: s.bind(("127.0.0.1",0))
print(" ".join(str(s.getsockname()[1]) for s in ss))'))
  cfg=$dir/cluster.toml
  {
    echo "data_root = \"$dir/data\""
    echo "[supervisor]"
    echo "control_addr = \"127.0.0.1:${ports[3]}\""
    for i in 0 1 2; do printf '[[nodes]]\nid = %d\naddr = "127.0.0.1:%s"\n' "$i" "${ports[$i]}"; done
  } >"$cfg"
  trap '"$bin" cluster stop --config "$cfg" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
  "$bin" cluster start --config "$cfg" >/dev/null
}
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$(now)"; }
status() { curl -s --max-time 2 "127.0.0.1:${ports[$1]}/status" || true; }
field() { python3 -c "import json,sys; v=json.loads(sys.argv[1] or '{}').get(sys.argv[2]); print('' if v is None else v)" "$1" "$2"; }
leader_of() {
  local i l
  for i in 0 1 2; do
    l=$(field "$(status "$i")" leader_id)
    if [ -n "$l" ] && [ "$(field "$(status "$l")" role)" = Leader ]; then echo "$l"; return; fi
  done
}
# wait_leader: sets $leader once a node leads (gives up after 60 s).
wait_leader() {
  leader=""
  for _ in $(seq 1 600); do
    leader=$(leader_of)
    [ -n "$leader" ] && return 0
    sleep 0.1 # poll interval, bounded by the loop count
  done
  echo "no leader after 60 s" >&2
  return 1
}
