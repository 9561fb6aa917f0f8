#!/usr/bin/env bash
# Runs the decode and LinearAttention CUDA kernels of Operators/Cuda/Kernels on a host emulation of the CUDA execution
# model (a fiber per CUDA thread, real barriers for __syncthreads and the warp shuffles) and compares it with independent
# double-precision references written from docs/operators/*.md. Needs g++ with C++20 (<barrier>) and python3.
# This is not a GPU: see README.md for what it does and does not show.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
kernels=$(cd "$here/../../Operators/Cuda/Kernels" && pwd)
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
cp "$kernels"/*.cu "$kernels"/*.cuh "$here"/emu/cuda_emu.h "$here"/emu/emu_fp.h "$here"/drivers/*.h "$build"/
python3 "$here/emu/make_common.py" "$kernels/onnx_attention_common.cuh" "$build/onnx_attention_common.cuh"
# Dynamic shared memory becomes a host array.
sed -i 's/extern __shared__ float4 shared_raw\[\];/float4* shared_raw = g_dynamic_shared;/' "$build/linear_attention_prefill.cu"

failures=0
compile() {  # name driver defines...
  local name=$1 driver=$2; shift 2
  g++ -std=c++20 -O1 -w -pthread -I"$build" "$@" "$here/drivers/$driver.cpp" -o "$build/$name" ||
    { echo "BUILD FAILED: $name"; failures=$((failures + 1)); }
}
run() {  # name args...
  local name=$1; shift
  if [ -x "$build/$name" ]; then
    local out status
    out=$("$build/$name" "$@"); status=$?
    grep -Ev ' ok$' <<<"$out"
    [ "$status" = 0 ] || { echo "  => FAILED: $name $*"; failures=$((failures + 1)); }
  fi
}
decode_threads() {  # dk block_cols
  python3 -c "import math; cg = $2 // 32; print(32 * cg * min(math.ceil($1 / 32), max(1, 16 // cg)))"
}

echo "== linear_attention_decode (rule map normalize act dk dv group cols gate_per_key beta_per_head tokens)"
while read -r rule map norm act dk dv group cols gpk bph tokens; do
  name=ld_${rule}_${map}_${act}_${dk}_${cols}
  compile "$name" linear_decode -DACT_TYPE=$act -DHEAD_DIM=$dk -DVALUE_DIM=$dv -DGROUP=$group -DRULE=$rule \
    -DFEATURE_MAP=$map -DNORMALIZE=$norm -DBLOCK_COLS=$cols -DEXPECTED_THREADS="$(decode_threads "$dk" "$cols")" \
    -DGATE_PER_KEY=$gpk -DBETA_PER_HEAD=$bph
  run "$name" "$tokens"
done <<'CASES'
0 0 1 0 64 64 2 64 1 1 5
1 1 1 0 60 40 2 64 1 1 4
1 2 0 0 64 64 1 32 0 1 3
2 4 1 0 64 64 2 64 1 1 5
2 2 0 0 128 128 4 128 1 0 3
3 4 0 0 60 60 2 64 1 1 4
3 3 1 0 64 96 3 32 0 0 3
0 3 1 1 128 128 2 128 1 1 3
1 0 1 2 64 64 2 64 0 1 3
3 4 0 1 128 128 2 32 1 1 3
2 1 0 2 64 64 1 64 1 0 3
CASES

echo "== linear_attention_prefill (map normalize act dk dv group chunk cols tokens gamma magnitude)"
while read -r map norm act dk dv group chunk cols tokens gamma mag; do
  name=lp_${map}_${act}_${dk}_${chunk}_${cols}
  compile "$name" linear_prefill -DACT_TYPE=$act -DHEAD_DIM=$dk -DVALUE_DIM=$dv -DGROUP=$group -DFEATURE_MAP=$map \
    -DNORMALIZE=$norm -DCHUNK=$chunk -DBLOCK_COLS=$cols
  run "$name" "$tokens" "$gamma" "$mag"
done <<'CASES'
0 1 0 64 64 2 32 64 70 0.97 1
2 0 0 60 40 1 16 16 37 1.0 1
4 0 0 128 128 2 32 64 65 0.9 1
0 1 1 64 64 2 64 64 70 0.97 1
3 1 1 60 40 2 16 16 37 0.95 1
1 0 2 128 128 1 64 128 130 1.0 1
2 0 2 64 64 2 32 32 33 0.97 1
0 1 2 64 64 2 32 32 33 0.97 1
3 1 1 64 64 1 64 64 70 1.0 30
CASES

echo "== window_attention_decode (window sinks splits position0 position1 softcap)"
compile w0 window -DACT_TYPE=0 -DHEAD_DIM=64 -DVALUE_DIM=64 -DGROUP=2
compile w1 window -DACT_TYPE=1 -DHEAD_DIM=60 -DVALUE_DIM=40 -DGROUP=3
compile w2 window -DACT_TYPE=2 -DHEAD_DIM=128 -DVALUE_DIM=128 -DGROUP=1
run w0 8 0 1 3 20; run w0 8 3 3 1 40; run w0 100 4 3 70 250; run w1 8 2 2 0 9; run w1 70 0 4 69 200 5; run w2 8 3 1 2 30

echo "== segment_attention_decode (segment_length splits position0 position1)"
compile s0 segment -DACT_TYPE=0 -DHEAD_DIM=64 -DVALUE_DIM=64 -DGROUP=2
compile s1 segment -DACT_TYPE=1 -DHEAD_DIM=60 -DVALUE_DIM=40 -DGROUP=3
compile s2 segment -DACT_TYPE=2 -DHEAD_DIM=128 -DVALUE_DIM=128 -DGROUP=1
run s0 5 1 0 4; run s0 5 3 9 12; run s0 40 2 39 100; run s1 7 4 13 6; run s1 1 2 0 5; run s2 50 3 49 77

echo "== hybrid_attention_decode (window splits position0 position1)"
compile h0m hybrid -DACT_TYPE=0 -DHEAD_DIM=64 -DVALUE_DIM=64 -DGROUP=2 -DCOMPRESS=1
compile h0l hybrid -DACT_TYPE=0 -DHEAD_DIM=60 -DVALUE_DIM=40 -DGROUP=3 -DCOMPRESS=0
compile h1l hybrid -DACT_TYPE=1 -DHEAD_DIM=64 -DVALUE_DIM=64 -DGROUP=2 -DCOMPRESS=0
compile h2m hybrid -DACT_TYPE=2 -DHEAD_DIM=128 -DVALUE_DIM=96 -DGROUP=1 -DCOMPRESS=1
run h0m 8 1 3 20; run h0m 8 3 8 9; run h0l 8 1 3 20; run h0l 10 3 10 40; run h1l 6 2 5 6; run h2m 30 4 29 100

echo "== summary_attention_decode (tokens window past0 past1)"
compile m0c summary -DACT_TYPE=0 -DHEAD_DIM=64 -DVALUE_DIM=64 -DGROUP=2 -DSUMMARY_KIND=0 -DSLOTS=1
compile m0m summary -DACT_TYPE=0 -DHEAD_DIM=60 -DVALUE_DIM=200 -DGROUP=3 -DSUMMARY_KIND=1 -DSLOTS=1
compile m0e summary -DACT_TYPE=0 -DHEAD_DIM=64 -DVALUE_DIM=64 -DGROUP=1 -DSUMMARY_KIND=2 -DSLOTS=4
compile m1m summary -DACT_TYPE=1 -DHEAD_DIM=128 -DVALUE_DIM=128 -DGROUP=2 -DSUMMARY_KIND=1 -DSLOTS=1
compile m2e summary -DACT_TYPE=2 -DHEAD_DIM=64 -DVALUE_DIM=64 -DGROUP=2 -DSUMMARY_KIND=2 -DSLOTS=3
run m0c 5 0 0 7; run m0m 9 4 0 6; run m0m 3 4 2 11; run m0e 6 0 0 3; run m1m 7 3 1 5; run m2e 4 0 2 9

echo "failures: $failures"
exit $((failures > 0))
