#!/usr/bin/env bash
# Host side of the device check (tools/gpu/verify.sh). Publishes the GPU build of onnx-attention self-contained for
# linux-x64 (the GPU machine has no .NET and reaches no registry), with ORT 1.32.0's CUDA provider from
# Microsoft.ML.OnnxRuntime.Gpu.Linux, packs it with gzip and splits it into parts that each fit one device call's carry
# (64 MiB in all): artifacts/gpu/stage/p0 ... pN, each with its stage.sh. On a warm machine, one call per part, in order:
#   carry ["artifacts/gpu/stage/pK"], command: bash artifacts/gpu/stage/pK/stage.sh
# Every part but the last only parks its piece in /tmp; the last one unpacks the app and runs tools/gpu/verify.sh,
# which prints the report. Usage: tools/gpu/pack.sh [--part-mib N] (default 56).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# 56 MiB: a call carries the working tree (about 3.4 MB) beside its part, 64 MiB in all.
part_mib=56
while [ $# -gt 0 ]; do
  case "$1" in
    --part-mib) part_mib=$2; shift 2 ;;
    *) echo "pack.sh: unknown argument '$1' (only --part-mib N)" >&2; exit 2 ;;
  esac
done
out=$root/artifacts/gpu
rm -rf "$out/app" "$out/stage" "$out/work"
mkdir -p "$out/work" "$out/stage"
dotnet publish "$root/tools/OnnxAttention.Cli/OnnxAttention.Cli.csproj" -c Release -r linux-x64 --self-contained \
  -p:OnnxRuntimeFlavor=Gpu -o "$out/app" -nologo -v q >&2
for lib in libonnxruntime.so libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so; do
  [ -f "$out/app/$lib" ] || { echo "pack.sh: the GPU publish has no $lib" >&2; exit 1; }
done
# The app's files, ORT's native libraries beside them (the provider loads from libonnxruntime.so's folder).
# gzip, not xz: xz -6 took over 12 minutes for these 420 MB on the shared 2-core CI machine; every machine can
# gunzip, and a part more costs one short device call.
tar cf - -C "$out" app | gzip -6 > "$out/work/app.tar.gz"
split -b "${part_mib}M" -d -a 2 "$out/work/app.tar.gz" "$out/work/part."
parts=("$out"/work/part.*)
n=${#parts[@]}
for i in "${!parts[@]}"; do
  dir=$out/stage/p$i
  mkdir -p "$dir"
  mv "${parts[$i]}" "$dir/"
  {
    echo '#!/usr/bin/env bash'
    echo "# Part $((i + 1)) of $n of the packed GPU build (tools/gpu/pack.sh). Run from the repository root."
    echo 'set -euo pipefail'
    echo 'here=$(cd "$(dirname "$0")" && pwd)'
    echo 'stage=${ONNX_ATTENTION_GPU_STAGE:-/tmp/onnx-attention-gpu}'
    echo 'mkdir -p "$stage/parts" && cp "$here"/part.* "$stage/parts/"'
    if [ "$i" -eq $((n - 1)) ]; then
      echo "have=\$(ls \"\$stage/parts\" | wc -l)"
      echo "if [ \"\$have\" -ne $n ]; then echo \"stage: \$have of $n parts in \$stage/parts (the machine went cold?): stage p0 to p$((n - 1)) again\" >&2; exit 1; fi"
      echo 'rm -rf "$stage/app"'
      echo 'cat "$stage"/parts/part.* | gzip -dc | tar xf - -C "$stage"'
      echo 'rm -rf "$stage/parts"'
      echo 'export ONNX_ATTENTION_GPU_CONFORMANCE="$here/conformance/onnx-v1.22.0-node"'
      echo 'export ONNX_ATTENTION_GPU_MODELS="$here/models"'
      echo 'ONNX_ATTENTION_GPU_APP="$stage/app" exec bash tools/gpu/verify.sh'
    else
      echo "echo \"stage: part $((i + 1)) of $n parked in \$stage/parts\""
    fi
  } > "$dir/stage.sh"
  chmod +x "$dir/stage.sh"
done
rm -rf "$out/work"
# The ONNX Attention conformance cases (5.4 MB) ride with the last part: ../shared does not travel to the device.
conformance=$root/../shared/conformance/onnx-v1.22.0-node
if [ -d "$conformance" ]; then
  mkdir -p "$out/stage/p$((n - 1))/conformance"
  cp -r "$conformance" "$out/stage/p$((n - 1))/conformance/"
else
  echo "pack.sh: no $conformance: the device run will report the conformance cases as not staged" >&2
fi
# A model whose HybridAttention layers are compress=hedgehog (fitted Hedgehog maps as initializers, the kind only
# calibrate writes; 3.3 MB), for verify.sh's generate check on CUDA: the bundled mobydick-byte model calibrated on this
# repository's README (bytes are its tokens) with a fixed plan and a few fit steps (about 10 s here). Its quality does
# not matter: the check compares CUDA's greedy tokens with the CPU's.
mobydick=$root/../shared/models/mobydick-byte/mobydick-byte.bin
if [ -f "$mobydick" ]; then
  mkdir -p "$out/stage/p$((n - 1))/models"
  "$out/app/onnx-attention" calibrate --model "$mobydick" --text "$root/README.md" --state-budget 1000000 \
    --plan 'hybrid-hedgehog:8,2@*' --fit-steps 5 --out "$out/stage/p$((n - 1))/models/hybrid-hedgehog.onnx" >&2
else
  echo "pack.sh: no $mobydick: the device run will report the hybrid-hedgehog generate check as not staged" >&2
fi
for i in $(seq 0 $((n - 1))); do
  echo "p$i $(du -sb "$out/stage/p$i" | cut -f1) bytes"
done
echo "stage these one per device call, in order, on a warm machine: $(cd "$out/stage" && ls -d p* | sort -V | tr '\n' ' ')"
