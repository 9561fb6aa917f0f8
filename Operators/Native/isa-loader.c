/*
 * libonnxattention.so as shipped: a small loader that picks, at load, the NativeAOT build of the operators this CPU
 * can run, and forwards RegisterCustomOps to it.
 *
 * NativeAOT compiles every kernel for one fixed instruction-set baseline and does not dispatch its Vector256 /
 * TensorPrimitives paths at run time as the JIT does. Built for x86-64-v2 the kernels run at 0.3-0.45x of the JIT's
 * speed on an AVX2/AVX-512 machine; built for x86-64-v3 they run near it, but on a CPU without AVX2 that build dies
 * with SIGILL while it starts (checked under qemu -cpu Nehalem), before any code of ours could refuse. So
 * build-native.sh publishes both, beside this loader:
 *   libonnxattention-x86-64-v3.so   (AVX, AVX2, BMI1, BMI2, F16C, FMA, LZCNT, MOVBE and the OS saving AVX state)
 *   libonnxattention-x86-64-v2.so   (any x86-64 CPU of the last 15 years)
 * ONNXATTENTION_ISA=x86-64-v2 (or x86-64-v3) in the environment forces one. A missing or unloadable build is an ORT
 * error status naming the file, never a crash.
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The two ORT C API entries used, declared by layout (ABI-stable since ORT 1.0): OrtApiBase's GetApi, and OrtApi's
 * first member CreateStatus. The loader needs no ORT headers. */
typedef struct OrtApiBase {
    const void *(*GetApi)(uint32_t version);
    const char *(*GetVersionString)(void);
} OrtApiBase;
typedef void *(*CreateStatusFn)(int code, const char *message);
typedef void *(*RegisterFn)(void *options, const OrtApiBase *api);

enum { ORT_FAIL = 1 };

static int has_x86_64_v3(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    const unsigned fma = 1u << 12, movbe = 1u << 22, osxsave = 1u << 27, avx = 1u << 28, f16c = 1u << 29;
    if ((c & (fma | movbe | osxsave | avx | f16c)) != (fma | movbe | osxsave | avx | f16c)) return 0;
    /* XCR0 bits 1 and 2: the OS saves SSE and AVX registers; without them AVX instructions fault. */
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6u) != 6u) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    const unsigned bmi1 = 1u << 3, avx2 = 1u << 5, bmi2 = 1u << 8;
    if ((b & (bmi1 | avx2 | bmi2)) != (bmi1 | avx2 | bmi2)) return 0;
    if (!__get_cpuid(0x80000001u, &a, &b, &c, &d)) return 0;
    const unsigned lzcnt = 1u << 5;
    return (c & lzcnt) != 0;
}

static void *fail(const OrtApiBase *api, const char *message)
{
    const void *ort = api != NULL ? api->GetApi(1) : NULL;
    if (ort == NULL) return NULL;
    return (*(const CreateStatusFn *)ort)(ORT_FAIL, message);
}

__attribute__((visibility("default"))) void *RegisterCustomOps(void *options, const OrtApiBase *api)
{
    static char message[8192];
    const char *isa = getenv("ONNXATTENTION_ISA");
    if (isa != NULL && *isa != '\0' && strcmp(isa, "x86-64-v2") != 0 && strcmp(isa, "x86-64-v3") != 0) {
        snprintf(message, sizeof message, "OnnxAttention: ONNXATTENTION_ISA is '%s'; expected x86-64-v2 or x86-64-v3", isa);
        return fail(api, message);
    }
    if (isa == NULL || *isa == '\0') isa = has_x86_64_v3() ? "x86-64-v3" : "x86-64-v2";

    /* The builds lie beside this file, whatever directory the host loaded it from. */
    Dl_info self;
    if (dladdr((void *)&RegisterCustomOps, &self) == 0 || self.dli_fname == NULL) {
        return fail(api, "OnnxAttention: the loader cannot find its own path (dladdr failed)");
    }
    const char *slash = strrchr(self.dli_fname, '/');
    int dir = slash != NULL ? (int)(slash - self.dli_fname + 1) : 0;
    char path[4096];
    if (snprintf(path, sizeof path, "%.*slibonnxattention-%s.so", dir, self.dli_fname, isa) >= (int)sizeof path) {
        return fail(api, "OnnxAttention: the library's path is too long");
    }
    /* Never closed: a NativeAOT runtime cannot be unloaded (both builds are linked with -z nodelete as well). */
    void *build = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (build == NULL) {
        snprintf(message, sizeof message, "OnnxAttention: cannot load %s (build-native.sh puts it beside libonnxattention.so): %s",
                 path, dlerror());
        return fail(api, message);
    }
    RegisterFn registerOps = (RegisterFn)dlsym(build, "RegisterCustomOps");
    if (registerOps == NULL) {
        snprintf(message, sizeof message, "OnnxAttention: %s has no RegisterCustomOps", path);
        return fail(api, message);
    }
    return registerOps(options, api);
}
