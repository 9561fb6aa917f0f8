#!/usr/bin/env bash
# The device check: run on the GPU machine by the last part of tools/gpu/pack.sh (or by hand with
# ONNX_ATTENTION_GPU_APP=<unpacked app folder> and ONNX_ATTENTION_GPU_CONFORMANCE=<onnx-v1.22.0-node folder>). Prints one
# report (also to $OUT/verify-report.txt when the device tool's $OUT is set) and exits 1 if any check fails. Where
# there is no GPU it says so in one line and exits 0. Sections, each under its own time limit so the whole run stays
# under about 8 minutes (docs/cuda-sessions.md, "The device run"):
#   1. verify-ops: every operator x type x rule on CUDA against the CPU kernel (prefill, prefill from past, decode,
#      split, in place, padded rows), one line per case;
#   2. the ONNX Attention conformance cases through the softmax rule on CUDA;
#   3. generate on CUDA == CPU (greedy tokens; every rule; batch 1, batch 2, mixed prompt lengths), and the same for a
#      calibrated model whose layers are HybridAttention compress=hedgehog (staged by pack.sh);
#   4. bench-ops --ep cuda --targets: the issue's four targets (decode B1 H32 d128 < 10 us per layer, decode B64 >= 2 TB/s
#      of state traffic, bfloat16 prefill B4 H16 T4096 d128 <= 0.77 ms, faster than ORT's com.microsoft.LinearAttention),
#      one TARGET line each, met or not (a figure, not a failed check); then bench-ops --ep cuda --quick, float16 and
#      float32: ours beside ORT's own CUDA com.microsoft.LinearAttention and GroupQueryAttention on the same device inputs.
#      The bench runs share what is left of the call's time (deadline below); one that no longer fits is skipped (OPEN).
# ONNX_ATTENTION_GPU_DRY_RUN=1 runs every section with --ep cpu where there is no GPU (the script's own plumbing, on the
# host: tools/gpu/ci-check.sh); its figures mean nothing.
set -uo pipefail
ep=cuda
if [ "${ONNX_ATTENTION_GPU_DRY_RUN:-0}" = 1 ]; then
  ep=cpu
elif ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "verify: no GPU here (nvidia-smi finds none); nothing to check"
  exit 0
fi
app=${ONNX_ATTENTION_GPU_APP:-/tmp/onnx-attention-gpu/app}
cli=$app/onnx-attention
if [ ! -x "$cli" ]; then
  echo "verify: no staged app at $app: run tools/gpu/pack.sh on the build machine and stage its parts" >&2
  exit 1
fi
conformance=${ONNX_ATTENTION_GPU_CONFORMANCE:-}
models=${ONNX_ATTENTION_GPU_MODELS:-}
export LD_LIBRARY_PATH=$app:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export DOTNET_gcServer=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
report=$work/report.txt
# The report goes straight to $OUT when the device tool set it, so a call stopped at its limit still returns it.
if [ -n "${OUT:-}" ] && [ -d "${OUT:-}" ]; then report=$OUT/verify-report.txt; : >"$report"; fi
# The last device call runs for at most 540 s (docs/cuda-sessions.md); unpacking takes some of it before this script.
deadline=$(( $(date +%s) + ${ONNX_ATTENTION_GPU_SECONDS:-480} ))
left() { echo $(( deadline - $(date +%s) )); }
failed=0
say() { printf '%s\n' "$*" | tee -a "$report"; }
check() { # name status detail
  say "$(printf '%-6s %s' "$2" "$1")${3:+: $3}"
  [ "$2" = FAIL ] && failed=1
  return 0
}
section_start=0
started() { section_start=$(date +%s); }
took() { echo "$(( $(date +%s) - section_start )) s"; }
say "== OnnxAttention GPU check ($(date -u +%FT%TZ))"
if [ $ep = cuda ]; then
  say "device: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -n 1)"
else
  say "device: none (dry run: every section with --ep cpu, CPU against CPU)"
fi
say "app: $("$cli" --version 2>/dev/null | head -n 1)"
jobs=$(( $(nproc) / 2 )); [ "$jobs" -ge 1 ] || jobs=1

# 1. Every operator x type x rule on CUDA against the CPU kernel. Its lines go into the report; its exit code is the verdict.
started
timeout 300 "$cli" verify-ops --ep $ep --jobs "$jobs" >"$work/ops.txt" 2>&1
code=$?
cat "$work/ops.txt" >>"$report"
# The reply shows only the end of the output: the failures (at most 30) and the OPEN cases counted by scenario.
grep -E '^FAIL' "$work/ops.txt" | head -n 30
grep -E '^OPEN' "$work/ops.txt" | awk -F'  ' '{split($4, a, ":"); n[a[1]]++} END {for (k in n) printf "OPEN   %d cases: %s (refused as not supported yet; lines in the report)\n", n[k], k}' 
summary=$(grep '^verify-ops: [0-9]' "$work/ops.txt" | tail -n 1)
case $code in
  0) check "operators x type x rule on CUDA vs the CPU kernel" PASS "${summary:-no summary}" ;;
  124) check "operators x type x rule on CUDA vs the CPU kernel" FAIL "stopped after 300 s; $(grep -c '^PASS' "$work/ops.txt") cases had passed" ;;
  *) check "operators x type x rule on CUDA vs the CPU kernel" FAIL "${summary:-exit $code: $(tail -n 2 "$work/ops.txt" | tr '\n' ' ')}" ;;
esac

# 2. The ONNX Attention conformance cases through the softmax rule on CUDA (staged beside the last part).
started
if [ -n "$conformance" ] && [ -d "$conformance" ]; then
  timeout 120 "$cli" verify-ops --ep $ep --ops none --conformance "$conformance" >"$work/conformance.txt" 2>&1
  code=$?
  cat "$work/conformance.txt" >>"$report"
  grep -E '^FAIL' "$work/conformance.txt" | head -n 20
  summary=$(grep '^conformance: [0-9]' "$work/conformance.txt" | tail -n 1)
  [ $code = 0 ] && check "ONNX conformance through the softmax rule on CUDA" PASS "$summary" \
    || check "ONNX conformance through the softmax rule on CUDA" FAIL "${summary:-exit $code: $(tail -n 2 "$work/conformance.txt" | tr '\n' ' ')}"
else
  check "ONNX conformance through the softmax rule on CUDA" FAIL "not staged (ONNX_ATTENTION_GPU_CONFORMANCE='$conformance'): pack.sh found no ../shared/conformance"
fi

# 3. generate: CUDA == CPU, greedy, the built-in tiny Llama; the runs go in parallel, the comparisons in order.
started
# A rule "model:NAME" runs the staged model NAME.onnx as it is (already swapped by calibrate), not the tiny Llama.
tokens() { # ep rule prompts... -> the generated ids, one line per row
  local ep=$1 rule=$2; shift 2
  local args=()
  case $rule in
    model:*) args=(--model "$models/${rule#model:}.onnx") ;;
    *) args=(--attention "$rule") ;;
  esac
  for p in "$@"; do args+=(--prompt "$p"); done
  timeout 120 "$cli" generate --ep "$ep" --max-tokens 24 "${args[@]}" 2>&1 |
    awk '/^\[[0-9]+\] /{print; next} /^prompt/{p=1; next} p && !/^prefill:/ && NF {print "[0] " $0; p=0}'
}
pairs=()
for rule in linear-elu linear-relu window:16 window:16,sinks=2 hybrid:16 hybrid:16,compress=mean segment:8 \
            summary:cumulative summary:moving=4 summary:ema=0.9 softmax; do
  for batch in one two mixed; do
    [ "$batch" = mixed ] && [ "$rule" = softmax ] && continue
    pairs+=("$rule|$batch")
  done
done
# mobydick-byte calibrated with HybridAttention compress=hedgehog in every layer (window 8, m 2): its tokens are bytes.
hedgehog=model:hybrid-hedgehog
if [ -n "$models" ] && [ -f "$models/hybrid-hedgehog.onnx" ]; then
  for batch in bytes-one bytes-two bytes-mixed; do pairs+=("$hedgehog|$batch"); done
else
  check "generate $hedgehog" FAIL "not staged (ONNX_ATTENTION_GPU_MODELS='$models'): pack.sh found no ../shared/models/mobydick-byte"
fi
prompts_of() {
  case $1 in
    one) printf '%s\n' "1 403 407 261 378 293" ;;
    two) printf '%s\n' "1 403 407 261 378 293" "1 17 99 4 250 31" ;;
    mixed) printf '%s\n' "1 403 407 261 378 293 7 8 9 10 11" "1 17" "1 5 6 7" ;;
    bytes-one) printf '%s\n' "67 97 108 108 32 109 101 32" ;;
    bytes-two) printf '%s\n' "67 97 108 108 32 109 101 32" "84 104 101 32 119 104 97 108" ;;
    bytes-mixed) printf '%s\n' "67 97 108 108 32 109 101 32 73 115 104" "84 104" "83 111 109 101" ;;
  esac
}
i=0
for pair in "${pairs[@]}"; do
  rule=${pair%%|*} batch=${pair##*|}
  mapfile -t prompts < <(prompts_of "$batch")
  for side in cpu target; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
    tokens "$([ $side = cpu ] && echo cpu || echo $ep)" "$rule" "${prompts[@]}" >"$work/gen.$i.$side" &
  done
  i=$((i + 1))
done
wait
i=0
for pair in "${pairs[@]}"; do
  rule=${pair%%|*} batch=${pair##*|}
  cpu=$(cat "$work/gen.$i.cpu") gpu_out=$(cat "$work/gen.$i.target")
  if [ -z "$cpu" ]; then
    check "generate $rule ($batch)" FAIL "the CPU run printed no tokens"
  elif [ "$cpu" = "$gpu_out" ]; then
    check "generate $rule ($batch)" PASS "CUDA tokens == CPU tokens"
  else
    check "generate $rule ($batch)" FAIL "CPU: $(echo "$cpu" | tr '\n' '|') CUDA: $(echo "$gpu_out" | tr '\n' '|')"
  fi
  i=$((i + 1))
done
say "generate: ${#pairs[@]} comparisons in $(took); runtime on $ep: $("$cli" generate --ep $ep --max-tokens 1 2>&1 | grep '^runtime:' | head -n 1)"

# 4. The issue's bench targets, then bench-ops on CUDA beside ORT's own CUDA kernels, float16 then float32. ORT 1.32's
# CUDA provider registers com.microsoft.LinearAttention for float, float16 and bfloat16, and GroupQueryAttention for
# float16 and bfloat16 only: the float32 run's GroupQueryAttention rows run it on ORT's CPU provider (the bench says so),
# the float16 run's on CUDA. Each run gets its own limit or what is left before the deadline, whichever is less.
bench_limit() { local l; l=$(left); [ "$l" -lt "$1" ] && echo "$l" || echo "$1"; }
started
limit=$(bench_limit 150)
if [ "$limit" -lt 30 ]; then
  check "bench-ops --ep $ep --targets" OPEN "not run: $limit s left of the call"
else
  bench=$(timeout "$limit" "$cli" bench-ops --ep $ep --targets --out "$work/bench-targets" 2>&1)
  code=$?
  printf '%s\n' "$bench" >>"$report"
  grep -E '^(targets|case) ' <<<"$bench"
  grep -E '^TARGET ' <<<"$bench" # in the reply; the report has them with the rest of the bench output
  n=$(grep -c '^TARGET ' <<<"$bench")
  if [ $code = 0 ] && [ "$n" = 4 ]; then
    check "bench-ops --ep $ep --targets" PASS "4 TARGET lines, $(grep -c '^TARGET .*) met;' <<<"$bench") met ($(took))"
  else
    check "bench-ops --ep $ep --targets" FAIL "exit $code after $(took), $n TARGET lines: $(echo "$bench" | tail -n 2 | tr '\n' ' ')"
  fi
fi
for type in float16 float32; do
  started
  limit=$(bench_limit 180)
  if [ "$limit" -lt 30 ]; then
    check "bench-ops --ep $ep --type $type" OPEN "not run: $limit s left of the call"
    continue
  fi
  if bench=$(timeout "$limit" "$cli" bench-ops --ep $ep --quick --type $type --out "$work/bench-$type" 2>&1); then
    check "bench-ops --ep $ep --type $type" PASS "tables in the report ($(took))"
  else
    check "bench-ops --ep $ep --type $type" FAIL "$(echo "$bench" | tail -n 3 | tr '\n' ' ')"
  fi
  printf '%s\n' "$bench" >>"$report" # the tables only in the report ($OUT/verify-report.txt) and CSVs
  grep -E '^(activations|execution provider):' <<<"$bench" | head -n 2
done

say "== $([ $failed = 0 ] && echo 'all checks that ran passed' || echo 'SOME CHECKS FAILED')"
if [ -n "${OUT:-}" ] && [ -d "${OUT:-}" ]; then
  for type in float16 float32; do
    [ -f "$work/bench-$type/bench-ops.csv" ] && cp "$work/bench-$type/bench-ops.csv" "$OUT/bench-ops-$type.csv"
  done
  [ -f "$work/bench-targets/bench-targets.csv" ] && cp "$work/bench-targets/bench-targets.csv" "$OUT/bench-targets.csv"
fi
exit $failed
