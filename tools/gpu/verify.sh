#!/usr/bin/env bash
# The device check: run on the GPU machine by the last part of tools/gpu/pack.sh (or by hand with
# ONNX_ATTENTION_GPU_APP=<unpacked app folder>). Prints one report and exits 1 if any check fails. Where there is no
# GPU it says so in one line and exits 0.
# Checks (each line PASS/FAIL/OPEN): generate on CUDA == CPU (greedy tokens, every rule, batch 2 and mixed lengths),
# bench-ops --ep cuda. Cases not built yet are printed as OPEN with the reason.
set -uo pipefail
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "verify: no GPU here (nvidia-smi finds none); nothing to check"
  exit 0
fi
app=${ONNX_ATTENTION_GPU_APP:-/tmp/onnx-attention-gpu/app}
cli=$app/onnx-attention
if [ ! -x "$cli" ]; then
  echo "verify: no staged app at $app: run tools/gpu/pack.sh on the build machine and stage its parts" >&2
  exit 1
fi
export LD_LIBRARY_PATH=$app:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export DOTNET_gcServer=0
failed=0
say() { printf '%s\n' "$*"; }
check() { # name status detail
  say "$(printf '%-6s %s' "$2" "$1")${3:+: $3}"
  [ "$2" = FAIL ] && failed=1
  return 0
}
say "== OnnxAttention GPU check ($(date -u +%FT%TZ))"
say "device: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -n 1)"
say "app: $("$cli" --version 2>/dev/null | head -n 1)"

# 1. generate: CUDA == CPU, greedy, the built-in tiny Llama (fixtures from ../shared do not travel to the device).
tokens() { # ep rule prompts... -> the generated ids, one line per row
  local ep=$1 rule=$2; shift 2
  local args=()
  for p in "$@"; do args+=(--prompt "$p"); done
  "$cli" generate --ep "$ep" --attention "$rule" --max-tokens 24 "${args[@]}" 2>&1 |
    awk '/^\[[0-9]+\] /{print; next} /^prompt/{p=1; next} p && !/^prefill:/ && NF {print "[0] " $0; p=0}'
}
for rule in linear-elu linear-relu window:16 window:16,sinks=2 hybrid:16 hybrid:16,compress=mean segment:8 \
            summary:cumulative summary:moving=4 summary:ema=0.9 softmax; do
  for batch in "one" "two" "mixed"; do
    case $batch in
      one) prompts=("1 403 407 261 378 293") ;;
      two) prompts=("1 403 407 261 378 293" "1 17 99 4 250 31") ;;
      mixed) [ "$rule" = softmax ] && continue; prompts=("1 403 407 261 378 293 7 8 9 10 11" "1 17" "1 5 6 7") ;;
    esac
    cpu=$(tokens cpu "$rule" "${prompts[@]}")
    gpu_out=$(tokens cuda "$rule" "${prompts[@]}")
    if [ -z "$cpu" ]; then
      check "generate $rule ($batch)" FAIL "the CPU run printed no tokens"
    elif [ "$cpu" = "$gpu_out" ]; then
      check "generate $rule ($batch)" PASS "CUDA tokens == CPU tokens"
    else
      check "generate $rule ($batch)" FAIL "CPU: $(echo "$cpu" | tr '\n' '|') CUDA: $(echo "$gpu_out" | tr '\n' '|')"
    fi
  done
done
say "runtime on CUDA: $("$cli" generate --ep cuda --max-tokens 1 2>&1 | grep '^runtime:' | head -n 1)"

# 2. bench-ops on CUDA next to ORT's own CUDA kernels (com.microsoft.LinearAttention, GroupQueryAttention).
if bench=$("$cli" bench-ops --ep cuda --quick --out /tmp/onnx-attention-gpu/bench 2>&1); then
  check "bench-ops --ep cuda" PASS "table below"
  say "$bench"
else
  check "bench-ops --ep cuda" FAIL "$(echo "$bench" | tail -n 3 | tr '\n' ' ')"
fi

# 3. Not built yet (issue 17): printed so the report shows what it does not cover.
check "operators x dtype x rule on CUDA vs the CPU kernel (prefill, decode, split, in place, padded rows)" OPEN "no device-side harness yet"
check "ONNX conformance cases through the softmax rule on CUDA" OPEN "the fixtures live in ../shared, which does not travel to the device"

say "== $([ $failed = 0 ] && echo 'all checks that ran passed' || echo 'SOME CHECKS FAILED')"
exit $failed
