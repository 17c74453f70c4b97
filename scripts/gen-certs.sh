#!/usr/bin/env bash
# Makes a cluster CA and one certificate per node, for trying TLS on one machine.
#
#   scripts/gen-certs.sh DIR [N] [IP...]
#
# DIR gets ca.pem / ca-key.pem and node<id>.pem / node<id>-key.pem for ids 0..N-1
# (N defaults to 3). Every node certificate is valid for 127.0.0.1, ::1 and localhost,
# plus each extra IP given, and usable both as a server and as a client certificate
# (nodes present it to each other: mutual TLS). Matches cluster.toml's
#
#   [tls]
#   ca_file = "DIR/ca.pem"
#   cert_file = "DIR/node{id}.pem"
#   key_file = "DIR/node{id}-key.pem"
#
# An existing CA in DIR is reused (so more nodes can be added later); node files are
# written anew. Needs openssl (installed with apt-get when missing and run as root).
set -euo pipefail

if [[ $# -lt 1 || "$1" == "-h" || "$1" == "--help" ]]; then
  sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
  [[ $# -lt 1 ]] && exit 2 || exit 0
fi
dir=$1
count=${2:-3}
shift $(( $# >= 2 ? 2 : 1 ))
if ! [[ "$count" =~ ^[0-9]+$ ]] || (( count < 1 )); then
  echo "gen-certs: N must be a positive number of nodes, not '$count'" >&2
  exit 2
fi
for ip in "$@"; do
  if ! [[ "$ip" =~ ^[0-9.]+$ || "$ip" =~ ^[0-9a-fA-F:]+$ ]]; then
    echo "gen-certs: '$ip' is not an IP address" >&2
    exit 2
  fi
done

if ! command -v openssl >/dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "gen-certs: installing openssl" >&2
    apt-get update -qq >/dev/null && apt-get install -y -qq openssl >/dev/null
  else
    echo "gen-certs: openssl is needed (apt-get install openssl)" >&2
    exit 1
  fi
fi

mkdir -p "$dir"
umask 077
days=825
if [[ ! -f "$dir/ca.pem" || ! -f "$dir/ca-key.pem" ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$dir/ca-key.pem" -out "$dir/ca.pem" -days "$days" \
    -subj "/CN=raft-nosql cluster CA $(openssl rand -hex 4)" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

san="IP:127.0.0.1,IP:::1,DNS:localhost"
for ip in "$@"; do san="$san,IP:$ip"; done
ext=$(mktemp)
trap 'rm -f "$ext"' EXIT
cat >"$ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=$san
EXT
for ((id = 0; id < count; id++)); do
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$dir/node$id-key.pem" -out "$dir/node$id.csr" \
    -subj "/CN=raft-nosql node $id" 2>/dev/null
  openssl x509 -req -in "$dir/node$id.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" \
    -CAcreateserial -out "$dir/node$id.pem" -days "$days" -extfile "$ext" 2>/dev/null
  rm -f "$dir/node$id.csr"
done
chmod 644 "$dir"/ca.pem "$dir"/node*.pem
echo "gen-certs: CA $dir/ca.pem and certificates for nodes 0..$((count - 1)) ($san)"
