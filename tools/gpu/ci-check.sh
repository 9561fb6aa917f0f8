#!/usr/bin/env bash
# The host side of the device check, on a machine without a GPU (CI): the GPU build packs into parts that each fit
# a device call (< 64 MiB), the parts staged in order unpack a self-contained app, verify.sh says in one line that
# there is no GPU and exits 0, the unpacked app generates on the CPU, --ep cuda fails in one line (no CUDA here), and
# verify.sh's every section runs through the staged app and conformance cases with --ep cpu (a dry run, ~3-4 minutes),
# printing the four TARGET lines of the bench section.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
fail() { echo "gpu ci-check: $*" >&2; exit 1; }
start=$(date +%s)
bash tools/gpu/pack.sh
echo "gpu ci-check: GPU build published and packed in $(( $(date +%s) - start )) s"
limit=$((64 * 1024 * 1024))
parts=$(ls -d artifacts/gpu/stage/p* | sort -V)
[ -n "$parts" ] || fail "no parts"
# What a device call sends: the working tree (tracked and untracked files git does not ignore) plus the carried part.
tree=$(git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -n 1 | cut -f1)
for p in $parts; do
  size=$(du -sb "$p" | cut -f1)
  [ $((size + tree)) -lt "$limit" ] || fail "$p is $size bytes, with the working tree's $tree over a call's 64 MiB"
done
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
export ONNX_ATTENTION_GPU_STAGE=$stage
last=""
for p in $parts; do last=$(bash "$p/stage.sh"); done
[ "$last" = "verify: no GPU here (nvidia-smi finds none); nothing to check" ] || fail "the last part's verify run said: $last"
app=$stage/app/onnx-attention
[ -x "$app" ] || fail "the staged parts did not unpack $app"
out=$("$app" generate --ep cpu --max-tokens 4) || fail "the unpacked app could not generate on the CPU: $out"
grep -q "^runtime: ONNX Runtime 1.32.0" <<<"$out" || fail "the unpacked app does not report ORT 1.32.0: $out"
set +e
err=$("$app" generate --ep cuda --max-tokens 4 2>&1 >/dev/null)
code=$?
set -e
[ "$code" = 1 ] || fail "generate --ep cuda without CUDA exited $code (expected 1): $err"
[ "$(printf '%s\n' "$err" | wc -l)" = 1 ] || fail "generate --ep cuda without CUDA printed more than one line: $err"
grep -q "^error: the CUDA execution provider is unavailable here" <<<"$err" || fail "unexpected error: $err"
# verify-ops on the GPU build without CUDA: one line, like generate.
set +e
verr=$("$app" verify-ops --ep cuda --quick 2>&1 >/dev/null)
code=$?
set -e
[ "$code" = 1 ] && [ "$(printf '%s\n' "$verr" | wc -l)" = 1 ] && grep -q "^error: the CUDA execution provider is unavailable here" <<<"$verr" ||
  fail "verify-ops --ep cuda without CUDA: exit $code, '$verr'"
# The device run's own script through the staged app and the staged conformance cases, every section on the CPU
# (a dry run: its plumbing, not CUDA).
last_part=$(echo $parts | tr ' ' '\n' | tail -n 1)
# No device-time deadline on the host: every bench section must run (ONNX_ATTENTION_GPU_SECONDS).
dry=$(ONNX_ATTENTION_GPU_DRY_RUN=1 ONNX_ATTENTION_GPU_SECONDS=3600 ONNX_ATTENTION_GPU_APP=$stage/app ONNX_ATTENTION_GPU_CONFORMANCE=$last_part/conformance/onnx-v1.22.0-node \
  ONNX_ATTENTION_GPU_MODELS=$last_part/models \
  bash tools/gpu/verify.sh 2>&1) || fail "the dry run of verify.sh failed: $(grep -E '^(FAIL|OPEN)' <<<"$dry" | head -n 5)"
grep -q "^== all checks that ran passed" <<<"$dry" || fail "the dry run of verify.sh did not end in a pass: $(tail -n 3 <<<"$dry")"
grep -q "^PASS   ONNX conformance through the softmax rule on CUDA: conformance: 128 cases, 89 passed, 0 failed" <<<"$dry" ||
  fail "the staged conformance cases did not run: $(grep -i conformance <<<"$dry" | tail -n 2)"
[ "$(grep -c '^PASS   generate ' <<<"$dry")" = 35 ] || fail "the dry run compared $(grep -c '^PASS   generate ' <<<"$dry") generate runs, expected 35"
[ "$(grep -c '^PASS   generate model:hybrid-hedgehog ' <<<"$dry")" = 3 ] || fail "the staged hybrid-hedgehog model was not generated from: $(grep 'hybrid-hedgehog' <<<"$dry" | head -n 3)"
# The issue's four bench targets, one TARGET line each (on the CPU their verdicts mean nothing; the lines must be there).
for t in decode-b1 decode-b64 prefill-bf16 faster-than-ort; do
  grep -qE "^TARGET $t: [0-9.]+ .*\) (met|not met);" <<<"$dry" || fail "the dry run printed no TARGET $t line: $(grep -E '^(TARGET|FAIL|OPEN)' <<<"$dry" | head -n 6)"
done
grep -q '^PASS   bench-ops --ep cpu --targets: 4 TARGET lines' <<<"$dry" || fail "the dry run's targets check did not pass: $(grep 'bench-ops --ep cpu --targets' <<<"$dry")"
echo "gpu ci-check: $(echo $parts | wc -w) parts, each with the working tree ($tree bytes) under 64 MiB; staged app runs on the CPU; without a GPU: '$last'; --ep cuda: '$err'; dry run of verify.sh through the staged app and conformance cases: passed, with the four TARGET lines and the staged hybrid-hedgehog model generated on both sides"
