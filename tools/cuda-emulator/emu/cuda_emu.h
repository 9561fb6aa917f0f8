// Host emulation of the CUDA subset the kernels use: each CUDA thread a fiber (x86-64; elsewhere, or with
// -DEMU_OS_THREADS, a std::thread), blocks run one after another.
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

#if defined(__x86_64__) && !defined(EMU_OS_THREADS)
// CUDA threads are fibers on the launching OS thread, switched cooperatively at barriers (a few nanoseconds a
// switch, against a futex wake-up per thread for OS threads): a thread runs until it waits at a barrier, and the
// scheduler resumes the others in turn. Same semantics as before: __syncthreads waits for the whole block,
// shuffles for the 32 lanes of the warp, so lanes diverging around a shuffle or a barrier some threads skip still
// hang; here that is detected (a full round in which no thread arrives anywhere) and reported.
extern "C" void emu_fiber_switch(void** save_sp, void* next_sp);
asm(R"(
    .text
    .globl emu_fiber_switch
    .hidden emu_fiber_switch
    .type emu_fiber_switch,@function
emu_fiber_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_fiber_switch, .-emu_fiber_switch
)");

struct FiberScheduler;
inline thread_local FiberScheduler* g_scheduler = nullptr;

struct FiberScheduler {
    static constexpr size_t kStackBytes = 256 * 1024;
    struct Fiber {
        void* sp = nullptr;
        bool done = false;
    };
    std::vector<Fiber> fibers;
    std::unique_ptr<char[]> stacks;  // uninitialised: only the pages a thread touches are ever mapped
    size_t stack_threads = 0;
    void* scheduler_sp = nullptr;
    unsigned current = 0;
    unsigned long long progress = 0;
    std::function<void()> body;

    void yield() { emu_fiber_switch(&fibers[current].sp, scheduler_sp); }

    static void entry()
    {
        FiberScheduler& s = *g_scheduler;
        s.body();
        s.fibers[s.current].done = true;
        ++s.progress;
        emu_fiber_switch(&s.fibers[s.current].sp, s.scheduler_sp);
        std::abort();  // a finished fiber is never resumed
    }

    // Runs body once per thread of the block; threadIdx/blockIdx are set before each resumption.
    void run(unsigned threads, dim3 block_index, const std::function<void()>& kernel_body);
};

inline thread_local dim3 threadIdx, blockIdx;

inline void FiberScheduler::run(unsigned threads, dim3 block_index, const std::function<void()>& kernel_body)
{
    body = kernel_body;
    fibers.assign(threads, Fiber{});
    if (stack_threads < threads) {
        stacks.reset(new char[static_cast<size_t>(threads) * kStackBytes]);
        stack_threads = threads;
    }
    for (unsigned t = 0; t < threads; ++t) {
        // Stack top as emu_fiber_switch pops it: control words, r15 r14 r13 r12 rbx rbp, then the return address
        // (entry), which must sit at a 16-byte boundary so entry starts as if called.
        auto top = reinterpret_cast<uintptr_t>(stacks.get() + (static_cast<size_t>(t) + 1) * kStackBytes);
        top &= ~static_cast<uintptr_t>(15);
        auto* slot = reinterpret_cast<uint64_t*>(top - 16);  // return address at top - 16 (16-byte aligned)
        slot[0] = reinterpret_cast<uint64_t>(&FiberScheduler::entry);
        uint64_t* sp = slot - 7;
        for (int i = 1; i < 7; ++i) sp[i] = 0;
        const uint32_t mxcsr = 0x1F80;
        const uint16_t fpucw = 0x037F;
        std::memcpy(sp, &mxcsr, 4);
        std::memcpy(reinterpret_cast<char*>(sp) + 4, &fpucw, 2);
        fibers[t].sp = sp;
    }
    FiberScheduler* outer = g_scheduler;
    g_scheduler = this;
    for (;;) {
        bool any = false;
        const unsigned long long before = progress;
        for (unsigned t = 0; t < threads; ++t) {
            if (fibers[t].done) continue;
            any = true;
            current = t;
            threadIdx = dim3{t, 0, 0};
            blockIdx = block_index;
            emu_fiber_switch(&scheduler_sp, fibers[t].sp);
        }
        if (!any) break;
        if (progress == before) {
            std::fprintf(stderr, "cuda_emu: deadlock in block (%u, %u): threads wait at barriers no thread can complete\n",
                block_index.x, block_index.y);
            std::abort();
        }
    }
    g_scheduler = outer;
}

struct EmuBarrier {
    unsigned expected;
    unsigned arrived = 0;
    unsigned long long generation = 0;
    explicit EmuBarrier(unsigned n) : expected(n) {}
    void arrive_and_wait()
    {
        FiberScheduler& s = *g_scheduler;
        ++s.progress;
        const unsigned long long mine = generation;
        if (++arrived == expected) {
            arrived = 0;
            ++generation;
            return;
        }
        while (generation == mine) s.yield();
    }
};
#else
inline thread_local dim3 threadIdx, blockIdx;
using EmuBarrier = std::barrier<>;
#endif

inline dim3 blockDim, gridDim;

struct BlockSync {
    std::unique_ptr<EmuBarrier> block;
    std::vector<std::unique_ptr<EmuBarrier>> warps;
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
#if defined(__x86_64__) && !defined(EMU_OS_THREADS)
    FiberScheduler scheduler;
    const std::function<void()> body = [&] { kernel(); };
#endif
    for (unsigned by = 0; by < grid.y; ++by)
    for (unsigned bx = 0; bx < grid.x; ++bx) {
        BlockSync sync;
        sync.block = std::make_unique<EmuBarrier>(block.x);
        for (unsigned w = 0; w < (block.x + 31) / 32; ++w) sync.warps.push_back(std::make_unique<EmuBarrier>(32));
        sync.lane_values.assign(block.x, 0.0f);
        g_sync = &sync;
#if defined(__x86_64__) && !defined(EMU_OS_THREADS)
        scheduler.run(block.x, dim3{bx, by, 0}, body);
#else
        std::vector<std::thread> threads;
        for (unsigned t = 0; t < block.x; ++t) {
            threads.emplace_back([&, t, bx, by] {
                threadIdx = dim3{t, 0, 0};
                blockIdx = dim3{bx, by, 0};
                kernel();
            });
        }
        for (auto& th : threads) th.join();
#endif
    }
}
