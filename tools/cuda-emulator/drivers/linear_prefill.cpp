#include "cuda_emu.h"
inline float4 g_dynamic_shared[(256 * 1024) / 16];
#include "linear_attention_prefill.cu"
#include "common_driver.h"
#include "linear_ref.h"
int main(int argc, char** argv)
{
    const int B = 2, T = argc > 1 ? atoi(argv[1]) : 70, Hkv = 2, Hq = Hkv * GROUP, dk = HEAD_DIM, dv = VALUE_DIM;
    const double gamma = argc > 2 ? atof(argv[2]) : 0.97;
    LinCfg c{B, T, Hq, Hkv, dk, dv, 0, FEATURE_MAP, NORMALIZE != 0, true, true, gamma, 1e-6, 0.3};
    Rng r(99 + FEATURE_MAP);
    const float mag = argc > 3 ? atof(argv[3]) : 1.0f;
    auto q = make_act(r, (size_t)B * T * Hq * dk, -mag, mag), k = make_act(r, (size_t)B * T * Hkv * dk, -mag, mag), v = make_act(r, (size_t)B * T * Hkv * dv, -1, 1);
    auto S0 = make_float(r, (size_t)B * Hkv * dk * dv, -0.5f, 0.5f);
    auto nu0 = make_float(r, (size_t)B * Hkv * dk, 0.5f, 1.5f);
    std::vector<act_t> y((size_t)B * T * Hq * dv);
    std::vector<float> S(S0.size()), nu(nu0.size());
    std::memset(g_dynamic_shared, 0xff, sizeof(g_dynamic_shared));  // garbage, as real shared memory would be
    dim3 grid{(unsigned)(B * Hkv), (unsigned)((dv + BLOCK_COLS - 1) / BLOCK_COLS), 1};
    launch(grid, dim3{128, 1, 1}, [&] {
        linear_attention_prefill(q.store.data(), k.store.data(), v.store.data(), S0.data(), nu0.data(),
            y.data(), S.data(), nu.data(), T, Hkv, (float)c.scale, (float)c.gamma, (float)c.eps);
    });
    std::vector<double> Sd(S0.begin(), S0.end()), nud(nu0.begin(), nu0.end());
    auto yr = linear_ref(c, q.value, k.value, v.value, Sd, nud, {}, {});
    std::printf("linear_prefill map %d norm %d act %d dk %d dv %d group %d chunk %d cols %d T %d gamma %g mag %g shared %d\n", FEATURE_MAP, NORMALIZE, ACT_TYPE, dk, dv, GROUP, CHUNK, BLOCK_COLS, T, gamma, mag, kSharedBytes);
    check("output", y.size(), [&](size_t i) { return oa::to_float(y[i]); }, yr, ACT_TYPE == 0 ? 2e-5 : ACT_TYPE == 1 ? 6e-3 : 4e-2);
    check("state", S.size(), [&](size_t i) { return S[i]; }, Sd, ACT_TYPE == 0 ? 2e-5 : 1e-4);
    check("normalizer", nu.size(), [&](size_t i) { return nu[i]; }, nud, 2e-5);
    return g_failures ? 1 : 0;
}
