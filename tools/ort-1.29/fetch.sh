#!/usr/bin/env bash
# Fetches the ONNX Runtime 1.29.0 CPU core (the one whose CUDA plugin EP library exists; see docs/cuda-sessions.md)
# from the npm registry into the git-ignored artifacts/ort-1.29/:
#   lib/libonnxruntime.so (+ .so.1 link), lib/libonnxruntime_providers_shared.so, include/*.h (ORT_API_VERSION 29)
# Idempotent: does nothing when lib/ and include/ are already complete (the stamp file is written last).
# Needs npm and tar. Exits non-zero, saying why, when the package cannot be fetched.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
package=com.github.asus4.onnxruntime
version=0.4.9
out="$root/artifacts/ort-1.29"
stamp="$out/.complete-$package-$version"
if [ -f "$stamp" ] && [ -f "$out/lib/libonnxruntime.so" ] && [ -f "$out/include/onnxruntime_c_api.h" ]; then
  echo "$out (already fetched)"
  exit 0
fi
command -v npm >/dev/null || { echo "npm is not on PATH: cannot fetch $package@$version" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# npm pack downloads the package tarball without installing anything (about 150 MB).
(cd "$work" && npm pack --silent "$package@$version" >/dev/null) ||
  { echo "npm pack $package@$version failed (is the npm registry reachable?)" >&2; exit 1; }
tgz="$work/$package-$version.tgz"
[ -f "$tgz" ] || { echo "npm pack did not produce $tgz" >&2; exit 1; }
# The Linux package ships no headers of its own; the iOS simulator framework's are the same 1.29 C API.
headers='package/Plugins/iOS~/onnxruntime.xcframework/ios-arm64_x86_64-simulator/onnxruntime.framework/Headers'
tar xzf "$tgz" --no-same-owner -C "$work" package/Plugins/Linux/x64/libonnxruntime.so \
  package/Plugins/Linux/x64/libonnxruntime_providers_shared.so "$headers"
rm -rf "$out.tmp" && mkdir -p "$out.tmp/lib" "$out.tmp/include"
mv "$work"/package/Plugins/Linux/x64/*.so "$out.tmp/lib/"
cp "$work/$headers"/*.h "$out.tmp/include/"
# The library's SONAME is libonnxruntime.so.1; a program linked with -lonnxruntime looks for that name.
ln -sf libonnxruntime.so "$out.tmp/lib/libonnxruntime.so.1"
grep -q '^#define ORT_API_VERSION 29$' "$out.tmp/include/onnxruntime_c_api.h" ||
  { echo "unexpected header: ORT_API_VERSION is not 29 in $package@$version" >&2; exit 1; }
rm -rf "$out" && mv "$out.tmp" "$out"
touch "$stamp"
echo "$out"
