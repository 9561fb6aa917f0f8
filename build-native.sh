#!/usr/bin/env bash
# Publishes the operators as a NativeAOT shared library (no .NET needed where it runs) and copies it, alone, to
#   artifacts/native/linux-x64/libonnxattention.so
# Its only export is RegisterCustomOps, the entry point ONNX Runtime's custom-op library loaders call.
# Needs the .NET 10 SDK plus clang (or gcc) and binutils. Extra arguments go to dotnet publish.
set -euo pipefail
root="$(cd "$(dirname "$0")" && pwd)"
rid=linux-x64
# A separate artifacts tree keeps publishing clear of the bin/obj folders a concurrent dotnet build/test is using,
# and keeps ILC's incremental outputs so a rebuild with unchanged sources is quick.
work="$root/artifacts/native-build"
dotnet publish "$root/Operators/Native/OnnxAttention.Operators.Native.csproj" -c Release -r "$rid" \
  --artifacts-path "$work" -nologo "$@"
built="$work/publish/OnnxAttention.Operators.Native/release_$rid/OnnxAttention.Operators.Native.so"
# The publish folder also holds libonnxruntime.so from the managed package (a dependency of the Operators project);
# only our library is taken, so hosts always use their own ONNX Runtime.
out="$root/artifacts/native/$rid"
mkdir -p "$out"
cp -f "$built" "$out/libonnxattention.so.tmp"
mv -f "$out/libonnxattention.so.tmp" "$out/libonnxattention.so"
echo "$out/libonnxattention.so"
