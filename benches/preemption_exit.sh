#!/usr/bin/env bash
# Fault-to-exit time of a preemption signal (docs/bench-faults-preemption.md): starts a
# tiny DPO run, waits for its first metrics line, sends the signal, and prints the seconds
# from the signal to the launcher's exit, its exit status and the checkpointed step.
#   bash benches/preemption_exit.sh [REPEATS=3]
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
B="$ROOT/target/release/rpo-shard"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 RPO_LOG=warn
N="${1:-3}"
SETS=(--set train.global_batch_size=2 --set train.micro_batch_size=1 --set train.sft_warmup_steps=0
      --set train.steps=2000 --set loss.name=dpo --set data.synthetic_train=64 --set eval.max_examples=0
      --set embedding.model=bag-of-words --set optim.warmup_steps=0 --set checkpoint.at_end=false)
measure() { # name signal command...
  local name=$1 sig=$2; shift 2
  for i in $(seq "$N"); do
    local out; out=$(mktemp -d)
    "$@" train "${SETS[@]}" --set out_dir="$out" >/dev/null 2>"$out.err" & local pid=$!
    until [ -s "$out/metrics.jsonl" ]; do sleep 0.05; done
    local t0; t0=$(date +%s.%N)
    kill -"$sig" "$pid"; wait "$pid"; local rc=$?
    local t1; t1=$(date +%s.%N)
    printf '%-34s %-5s %6.2f s  rc %3s  checkpoint %s\n' "$name" "$sig" "$(echo "$t1 - $t0" | bc)" "$rc" \
      "$(ls "$out/checkpoints" 2>/dev/null | grep step- | tr '\n' ' ')"
    rm -rf "$out" "$out.err"
  done
}
measure "1 process" TERM "$B"
measure "mpirun -n 2, sigkill_timeout 1 (default)" TERM mpirun -n 2 --oversubscribe "$B"
measure "mpirun -n 2, sigkill_timeout 5" TERM mpirun -n 2 --oversubscribe --mca odls_base_sigkill_timeout 5 "$B"
measure "mpirun -n 2, SIGUSR1 (forwarded)" USR1 mpirun -n 2 --oversubscribe "$B"
