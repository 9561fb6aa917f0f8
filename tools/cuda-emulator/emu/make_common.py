"""Writes the emulation twin of onnx_attention_common.cuh: the same file with the three functions that need the
GPU (the cvt conversions and mma.sync, inline PTX) routed to host implementations in emu_fp.h."""
import sys

src_path, dst_path = sys.argv[1], sys.argv[2]
src = open(src_path).read()
src = src.replace('#pragma once\n', '#pragma once\n#include "cuda_emu.h"\n#include "emu_fp.h"\n', 1)


def replace_body(text, signature, body):
    start = text.index(signature)
    brace = text.index('{', start)
    depth, end = 0, brace
    while True:
        if text[end] == '{':
            depth += 1
        elif text[end] == '}':
            depth -= 1
            if depth == 0:
                break
        end += 1
    return text[:brace] + body + text[end + 1:]


src = replace_body(src, '__device__ __forceinline__ float to_float(act_t x)', '{ return emu_to_float(x); }')
src = replace_body(src, '__device__ __forceinline__ act_t from_float(float f)', '{ return emu_from_float(f); }')
src = replace_body(src, '__device__ __forceinline__ void mma_16816(float d[4], const unsigned int a[4], const unsigned int b[2])',
                   '{ emu_mma(d, a, b); }')
open(dst_path, 'w').write(src)
