// Host emulation of the CUDA subset the kernels use: one std::thread per CUDA thread, blocks run one after another.
#pragma once
#include <barrier>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <vector>
#include <algorithm>
#include <cstdio>
#include <cstdlib>

struct dim3 { unsigned x = 1, y = 1, z = 1; };
struct float4 { float x, y, z, w; };

inline thread_local dim3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;

struct BlockSync {
    std::unique_ptr<std::barrier<>> block;
    std::vector<std::unique_ptr<std::barrier<>>> warps;
    std::vector<float> lane_values;
};
inline BlockSync* g_sync = nullptr;

inline void __syncthreads() { g_sync->block->arrive_and_wait(); }
inline void __syncwarp() {}

inline float __shfl_xor_sync(unsigned, float v, int offset, int width = 32)
{
    const int tid = threadIdx.x;
    const int warp = tid / 32, lane = tid % 32;
    (void)width;
    g_sync->lane_values[tid] = v;
    g_sync->warps[warp]->arrive_and_wait();
    const float r = g_sync->lane_values[warp * 32 + (lane ^ offset)];
    g_sync->warps[warp]->arrive_and_wait();
    return r;
}

inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline float __uint_as_float(unsigned i) { float f; std::memcpy(&f, &i, 4); return f; }
using std::min;
using std::max;
using std::isinf;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __shared__ static
#define __launch_bounds__(x)

template <class F>
void launch(dim3 grid, dim3 block, F kernel)
{
    gridDim = grid;
    blockDim = block;
    for (unsigned by = 0; by < grid.y; ++by)
    for (unsigned bx = 0; bx < grid.x; ++bx) {
        BlockSync sync;
        sync.block = std::make_unique<std::barrier<>>(block.x);
        for (unsigned w = 0; w < (block.x + 31) / 32; ++w) sync.warps.push_back(std::make_unique<std::barrier<>>(32));
        sync.lane_values.assign(block.x, 0.0f);
        g_sync = &sync;
        std::vector<std::thread> threads;
        for (unsigned t = 0; t < block.x; ++t) {
            threads.emplace_back([&, t, bx, by] {
                threadIdx = dim3{t, 0, 0};
                blockIdx = dim3{bx, by, 0};
                kernel();
            });
        }
        for (auto& th : threads) th.join();
    }
}
