#!/usr/bin/env bash
# The original project's demo, end to end, against a running cluster (`make server`):
# create the Music table, put two songs, read them from the leader and from a
# follower, query by sort-key prefix, delete an item. The table stays, with one song,
# for the README's next sections (failover writes to it).
# Every command is printed, shell-quoted so it can be copied, before its answer.
# Exits non-zero on the first failure.
#
# Environment: BIN (default target/debug/raft-nosql), CONFIG (default cluster.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/debug/raft-nosql}
CONFIG=${CONFIG:-cluster.toml}
source scripts/lib.sh
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {'d': d}))" "$1"; }
run() { printf '\n\033[1m$ raft-nosql %s\033[0m\n' "$(shell_line "$@")"; "$BIN" --config "$CONFIG" "$@"; }

[ -x "$BIN" ] || { echo "no binary at $BIN: run 'make build' first" >&2; exit 2; }
status=$("$BIN" --config "$CONFIG" status) || { echo "no cluster answers: start one with 'make server'" >&2; exit 2; }
leader=$(echo "$status" | json "d['leader_addr']")
follower=$(echo "$status" | json "[a for i, a in d['membership'].items() if int(i) != d['leader_id']][0]")
echo "leader: $leader   a follower: $follower"

"$BIN" --config "$CONFIG" delete-table --target-addr "$leader" --table-name Music >/dev/null 2>&1 || true
run create-table --target-addr "$follower" --table-name Music --partition-key-name Artist --sort-key-name SongTitle -v
run put-item --target-addr "$follower" --table-name Music -v \
  --item-data '{"Artist":"No One You Know","SongTitle":"Call Me Today","AlbumTitle":"Somewhat Famous","Year":2015}'
run put-item --target-addr "$leader" --table-name Music \
  --item-data '{"Artist":"No One You Know","SongTitle":"Call Me Tomorrow","AlbumTitle":"Somewhat Famous","Year":2016}'
run get-item --target-addr "$leader" --table-name Music --partition-key "No One You Know" --sort-key "Call Me Today"
# A follower applies a moment later: an eventual read may need another try.
for _ in $(seq 1 50); do
  "$BIN" --config "$CONFIG" get-item --target-addr "$follower" --table-name Music \
    --partition-key "No One You Know" --sort-key "Call Me Today" >/dev/null 2>&1 && break
  sleep 0.1
done
run get-item --target-addr "$follower" --table-name Music --partition-key "No One You Know" --sort-key "Call Me Today"
run query-items --target-addr "$follower" --table-name Music --partition-key "No One You Know" --sort-key-prefix "Call Me" --output table
run delete-item --target-addr "$follower" --table-name Music --partition-key "No One You Know" --sort-key "Call Me Today"
run query-items --target-addr "$leader" --table-name Music --partition-key "No One You Know" --output table
run list-tables --target-addr "$leader"
echo
echo "demo finished; table Music stays for the README's next sections ('raft-nosql delete-table --table-name Music' removes it)"
