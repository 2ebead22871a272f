#!/usr/bin/env bash
# Runs a command in a memory cgroup of its own (cgroup v1, as root) limited to LIMIT
# bytes, so one MPI rank gets a hard per-rank budget: exceeding it OOM-kills that rank.
#   mpirun -n 4 bash benches/memory_cgroup.sh 2147483648 <command...>
set -uo pipefail
limit="$1"; shift
root=/sys/fs/cgroup/memory
if [[ ! -w "$root" ]]; then
  echo "memory_cgroup.sh: $root is not writable (needs root and cgroup v1); no budget can be enforced" >&2
  exit 3
fi
group="$root/rpo-shard-bench-$$"
mkdir "$group"
echo "$limit" > "$group/memory.limit_in_bytes"
echo $$ > "$group/cgroup.procs"
"$@"
rc=$?
killed=$(grep -c . "$group/memory.failcnt" >/dev/null && cat "$group/memory.failcnt")
peak=$(cat "$group/memory.max_usage_in_bytes" 2>/dev/null || echo 0)
# The cgroup's own high-water mark (page cache of files written included), for the caller.
[[ -n "${MEMORY_CGROUP_REPORT:-}" ]] && echo "${OMPI_COMM_WORLD_RANK:-0} $peak $rc" >> "$MEMORY_CGROUP_REPORT"
echo $$ > "$root/cgroup.procs"
rmdir "$group" 2>/dev/null
[[ $rc -ne 0 ]] && echo "memory_cgroup.sh: exit $rc (limit $limit bytes, failcnt $killed)" >&2
exit $rc
