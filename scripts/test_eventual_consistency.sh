#!/usr/bin/env bash
# Eventual, session and strong reads, seen against a running cluster.
#
# With the followers applying committed entries late (a simulated apply delay), write
# through the leader and read the key back in every way:
#   1. eventual read on a follower, at once   -> may be stale or missing (reported)
#   2. session read on that follower          -> MUST be the new value (read-your-writes)
#   3. strong read                             -> MUST be the new value (linearizable)
#   4. after convergence, eventual reads on every node -> MUST all be the new value
#   5. the state digests of all nodes          -> MUST be equal at the same index
# Exits non-zero if any MUST fails. Needs a running cluster (`make server`).
# Apply delays left from earlier experiments (`cluster set-delay`, on any node, the
# leader included) are cleared first and every node's delay is cleared at the end.
#
# Environment: BIN (default target/debug/raft-nosql), CONFIG (default cluster.toml),
# DELAY_MS (follower apply delay, default 2000).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/debug/raft-nosql}
CONFIG=${CONFIG:-cluster.toml}
DELAY_MS=${DELAY_MS:-2000}
TABLE=ConsistencyDemo
failures=0

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# Prints a raft-nosql command line, then runs it (stdout and stderr to the caller).
# The command line goes to fd 3 (the terminal), so $(cli ...) captures only its answer.
exec 3>&1
cli() { printf '  $ raft-nosql %s\n' "$(shell_line "$@")" >&3; "$BIN" --config "$CONFIG" "$@"; }
ok() { printf '  OK: %s\n' "$*"; }
bad() { printf '  FAIL: %s\n' "$*"; failures=$((failures + 1)); }
source scripts/lib.sh
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {'d': d}))" "$1"; }

[ -x "$BIN" ] || { echo "no binary at $BIN: run 'make build' first" >&2; exit 2; }
first=$("$BIN" --config "$CONFIG" status 2>/dev/null) || { echo "no cluster answers: start one with 'make server'" >&2; exit 2; }

say "Who leads?"
leader_id=$(echo "$first" | json "d['leader_id']")
leader=$(echo "$first" | json "d['leader_addr']")
[ "$leader_id" != "None" ] || { echo "no leader elected yet; try again in a moment" >&2; exit 2; }
mapfile -t members < <(echo "$first" | json "'\n'.join(f'{k} {v}' for k, v in d['membership'].items())")
followers=()
for m in "${members[@]}"; do
  id=${m%% *}; addr=${m#* }
  [ "$id" = "$leader_id" ] || followers+=("$id $addr")
done
echo "  leader: node$leader_id at $leader; followers: ${followers[*]}"
fid=${followers[0]%% *}; faddr=${followers[0]#* }

restore() {
  for m in "${members[@]}"; do "$BIN" --config "$CONFIG" cluster set-delay "${m%% *}" --apply-delay-ms 0 >/dev/null 2>&1; done
}
trap restore EXIT
# A delay on the leader would hold every write back until the followers had applied it
# too, and hide the stale read this script wants to show.
restore

say "Create table $TABLE (if missing) and wait until every node has it"
"$BIN" --config "$CONFIG" create-table --target-addr "$leader" --table-name "$TABLE" --partition-key-name Key >/dev/null 2>&1 || true
for m in "${members[@]}"; do
  for _ in $(seq 1 100); do
    "$BIN" --config "$CONFIG" describe-table --target-addr "${m#* }" --table-name "$TABLE" >/dev/null 2>&1 && break
    sleep 0.1
  done
done

say "Followers apply committed entries ${DELAY_MS} ms late (simulation; durability unchanged)"
for f in "${followers[@]}"; do cli cluster set-delay "${f%% *}" --apply-delay-ms "$DELAY_MS"; done
value="v-$(date +%s%N)"

say "Write Key=demo Value=$value through the leader"
out=$(cli put-item --target-addr "$leader" --table-name "$TABLE" --item-data "{\"Key\":\"demo\",\"Value\":\"$value\"}") || { bad "write failed"; exit 1; }
version=$(echo "$out" | json "d['version']")
echo "  acknowledged at log index $version (committed on a majority, fsynced)"

say "1. Eventual read on follower node$fid, at once"
if out=$(cli get-item --target-addr "$faddr" --table-name "$TABLE" --partition-key demo 2>&1); then
  seen=$(echo "$out" | json "d['item'].get('Value')")
  if [ "$seen" = "$value" ]; then echo "  saw the new value already (the delay had passed)"; else echo "  STALE: saw $seen, not $value"; fi
else
  echo "  MISSING: the follower has not applied the write yet ($out)"
fi

say "2. Session read on node$fid with --after-index $version (waits until applied there)"
out=$(cli get-item --target-addr "$faddr" --table-name "$TABLE" --partition-key demo --after-index "$version" 2>&1)
seen=$(echo "$out" | json "d['item'].get('Value')" 2>/dev/null)
[ "$seen" = "$value" ] && ok "read-your-writes: $seen" || bad "session read returned ${seen:-$out}"

say "3. Strong read on node$fid (read index from the leader, applied on node$fid first)"
out=$(cli get-item --target-addr "$faddr" --table-name "$TABLE" --partition-key demo --consistency strong 2>&1)
seen=$(echo "$out" | json "d['item'].get('Value')" 2>/dev/null)
[ "$seen" = "$value" ] && ok "linearizable: $seen" || bad "strong read returned ${seen:-$out}"

say "4. Remove the delay, wait for every node to apply everything"
restore
converged=""
for _ in $(seq 1 150); do
  digests=(); indexes=()
  for m in "${members[@]}"; do
    st=$("$BIN" --config "$CONFIG" status --target-addr "${m#* }" 2>/dev/null) || continue
    digests+=("$(echo "$st" | json "d['digest']")"); indexes+=("$(echo "$st" | json "d['digest_index']")")
  done
  if [ ${#digests[@]} -eq ${#members[@]} ] && [ "$(printf '%s\n' "${indexes[@]}" | sort -u | wc -l)" = 1 ]; then
    converged=yes; break
  fi
  sleep 0.2
done
[ -n "$converged" ] && ok "all nodes applied up to index ${indexes[0]}" || bad "nodes did not reach the same index"
for m in "${members[@]}"; do
  out=$(cli get-item --target-addr "${m#* }" --table-name "$TABLE" --partition-key demo 2>&1)
  seen=$(echo "$out" | json "d['item'].get('Value')" 2>/dev/null)
  [ "$seen" = "$value" ] && ok "node${m%% *}: $seen" || bad "node${m%% *} returned ${seen:-$out}"
done

say "5. State digests"
printf '  %s\n' "${digests[@]}"
[ "$(printf '%s\n' "${digests[@]}" | sort -u | wc -l)" = 1 ] && ok "identical state on every node" || bad "digests differ"

echo
if [ "$failures" -eq 0 ]; then echo "PASS: every guarantee held"; else echo "FAILED: $failures guarantee(s) broken"; exit 1; fi
