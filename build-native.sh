#!/usr/bin/env bash
# Publishes the operators as NativeAOT shared libraries (no .NET needed where they run) into
#   artifacts/native/linux-x64/libonnxattention.so            the library hosts load (Operators/Native/isa-loader.c)
#   artifacts/native/linux-x64/libonnxattention-x86-64-v3.so  the operators for CPUs with AVX2, FMA, BMI2 (2013 on)
#   artifacts/native/linux-x64/libonnxattention-x86-64-v2.so  the operators for any other x86-64 CPU
# NativeAOT fixes the instruction set at compile time (no run-time dispatch of the kernels' wide vectors), and a v3
# build dies with SIGILL on a CPU without AVX2, so both are built and the loader picks one when a host registers it.
# Keep the three files together. The only export of each is RegisterCustomOps, the entry point ONNX Runtime's
# custom-op library loaders call. Needs the .NET 10 SDK plus clang (or gcc) and binutils. Extra arguments go to
# dotnet publish (both builds).
set -euo pipefail
root="$(cd "$(dirname "$0")" && pwd)"
rid=linux-x64
out="$root/artifacts/native/$rid"
mkdir -p "$out"
for isa in x86-64-v3 x86-64-v2; do
  # A separate artifacts tree per build keeps publishing clear of the bin/obj folders a concurrent dotnet build/test
  # is using, and keeps ILC's incremental outputs so a rebuild with unchanged sources is quick.
  work="$root/artifacts/native-build/$isa"
  dotnet publish "$root/Operators/Native/OnnxAttention.Operators.Native.csproj" -c Release -r "$rid" \
    --artifacts-path "$work" -nologo -p:IlcInstructionSet="$isa" "$@"
  built="$work/publish/OnnxAttention.Operators.Native/release_$rid/OnnxAttention.Operators.Native.so"
  # The publish folder also holds libonnxruntime.so from the managed package (a dependency of the Operators
  # project); only our library is taken, so hosts always use their own ONNX Runtime.
  cp -f "$built" "$out/libonnxattention-$isa.so.tmp"
  mv -f "$out/libonnxattention-$isa.so.tmp" "$out/libonnxattention-$isa.so"
done
cc=$(command -v clang || command -v gcc) || { echo "build-native.sh: neither clang nor gcc is on PATH" >&2; exit 1; }
# Exports only RegisterCustomOps; nodelete because ORT dlcloses a custom-op library and the build it loaded stays.
"$cc" -std=c11 -O2 -Wall -Wextra -Werror -fPIC -shared -fvisibility=hidden -Wl,-z,nodelete \
  "$root/Operators/Native/isa-loader.c" -o "$out/libonnxattention.so.tmp" -ldl
mv -f "$out/libonnxattention.so.tmp" "$out/libonnxattention.so"
echo "$out/libonnxattention.so"
