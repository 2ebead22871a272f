#!/usr/bin/env bash
# rpo-shard on several nodes with Open MPI: a hostfile, the network chosen by subnet, a
# collective deadline, a shared out_dir. See launcher/README.md ("Several nodes").
#
#   launcher/multinode.sh --hostfile HOSTS --subnet 10.1.0.0/16 [--ranks-per-node N] \
#       [--timeout SECONDS] [--btl tcp,vader,self] -- selftest
#   launcher/multinode.sh --hostfile HOSTS --subnet 10.1.0.0/16 -- train --config C.toml \
#       --set out_dir=/shared/runs/x
#
# Environment: RPO_SHARD (the binary, same path on every node; default
# target/release/rpo-shard here), MPIRUN (default mpirun), MPIRUN_ARGS (extra mpirun
# arguments, e.g. "--mca plm_rsh_agent /path/agent"), RPO_LOG, OMP_NUM_THREADS (passed on).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${RPO_SHARD:-$ROOT/target/release/rpo-shard}"
HOSTFILE="" SUBNET="" PER_NODE="" TIMEOUT="" BTL="tcp,vader,self"
usage() { sed -n '2,13p' "$0" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --hostfile) HOSTFILE="$2"; shift 2 ;;
    --subnet) SUBNET="$2"; shift 2 ;;
    --ranks-per-node) PER_NODE="$2"; shift 2 ;;
    --timeout) TIMEOUT="$2"; shift 2 ;;
    --btl) BTL="$2"; shift 2 ;;
    --) shift; break ;;
    *) usage ;;
  esac
done
[ -n "$HOSTFILE" ] && [ -n "$SUBNET" ] && [ $# -gt 0 ] || usage
[ -f "$HOSTFILE" ] || { echo "error: no hostfile $HOSTFILE" >&2; exit 2; }
case "$SUBNET" in */*) ;; *) echo "error: --subnet wants a CIDR such as 10.1.0.0/16, got $SUBNET" >&2; exit 2 ;; esac

# Ranks: --ranks-per-node × nodes, else the sum of the hostfile's slots.
NODES=$(grep -cvE '^\s*(#|$)' "$HOSTFILE")
if [ -n "$PER_NODE" ]; then
  PLACE=(-n "$((PER_NODE * NODES))" --map-by "ppr:$PER_NODE:node")
else
  PLACE=(-n "$(awk '!/^[[:space:]]*(#|$)/ { n += 1; for (i = 2; i <= NF; i++) if ($i ~ /^slots=/) { sub(/slots=/, "", $i); n += $i - 1 } } END { print n }' "$HOSTFILE")")
fi

# The subnet, not interface names (they differ per node), selects the network for both the
# data (btl) and Open MPI's own control traffic (oob). Keepalive on the control channel
# ends the job within ~25 s when a whole node is lost; the collective deadline
# ([distributed] collective_timeout_s, --timeout here for train) covers a lost data path or
# a stalled rank.
MCA=(--mca btl "$BTL"
     --mca btl_tcp_if_include "$SUBNET" --mca oob_tcp_if_include "$SUBNET"
     --mca oob_tcp_keepalive_time 10 --mca oob_tcp_keepalive_intvl 5 --mca oob_tcp_keepalive_probes 3)
ENVS=(-x "RPO_LOG=${RPO_LOG:-info}")
[ -n "${OMP_NUM_THREADS:-}" ] && ENVS+=(-x OMP_NUM_THREADS)
[ -n "${LD_LIBRARY_PATH:-}" ] && ENVS+=(-x LD_LIBRARY_PATH)

CMD=("$@")
if [ -n "$TIMEOUT" ]; then
  case "${CMD[0]}" in
    selftest) CMD+=(--collective-timeout-s "$TIMEOUT") ;;
    *) CMD+=(--set "distributed.collective_timeout_s=$TIMEOUT") ;;
  esac
fi
# shellcheck disable=SC2086 # MPIRUN_ARGS is a list of words
exec "${MPIRUN:-mpirun}" --hostfile "$HOSTFILE" "${PLACE[@]}" "${MCA[@]}" "${ENVS[@]}" \
  ${MPIRUN_ARGS:-} "$BIN" "${CMD[@]}"
