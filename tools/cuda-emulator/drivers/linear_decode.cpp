#include "linear_attention_decode.cu"
#include "common_driver.h"
#include "linear_ref.h"
int main(int argc, char** argv)
{
    const int B = 2, T = argc > 1 ? atoi(argv[1]) : 5, Hkv = 2, Hq = Hkv * GROUP, dk = HEAD_DIM, dv = VALUE_DIM;
    LinCfg c{B, T, Hq, Hkv, dk, dv, RULE, FEATURE_MAP, NORMALIZE != 0, GATE_PER_KEY != 0, BETA_PER_HEAD != 0, 0.97, 1e-6, 0.3};
    Rng r(1234 + RULE * 7 + FEATURE_MAP);
    const bool delta = RULE >= 2;
    // Delta rules need contractive writes: small keys (identity/relu), or l2norm.
    const float kr = delta && FEATURE_MAP != 4 ? 0.15f : 1.0f;
    auto q = make_act(r, (size_t)B * T * Hq * dk, -1, 1), k = make_act(r, (size_t)B * T * Hkv * dk, -kr, kr), v = make_act(r, (size_t)B * T * Hkv * dv, -1, 1);
    auto decay = make_act(r, (size_t)B * T * Hkv * (GATE_PER_KEY ? dk : 1), -0.3f, 0.0f);
    auto beta = make_act(r, (size_t)B * T * (BETA_PER_HEAD ? Hkv : 1), 0.2f, 0.9f);
    auto S0 = make_float(r, (size_t)B * Hkv * dk * dv, -0.5f, 0.5f);
    auto nu0 = make_float(r, (size_t)B * Hkv * dk, 0.5f, 1.5f);
    std::vector<act_t> y((size_t)B * T * Hq * dv);
    std::vector<float> S(S0.size()), nu(nu0.size());
    const int threads = EXPECTED_THREADS;
    dim3 grid{(unsigned)(B * Hkv), (unsigned)((dv + BLOCK_COLS - 1) / BLOCK_COLS), 1};
    launch(grid, dim3{(unsigned)threads, 1, 1}, [&] {
        linear_attention_decode(q.store.data(), k.store.data(), v.store.data(), S0.data(), nu0.data(), decay.store.data(), beta.store.data(),
            y.data(), S.data(), nu.data(), T, Hkv, (float)c.scale, (float)c.gamma, (float)c.eps);
    });
    std::vector<double> Sd(S0.begin(), S0.end()), nud(nu0.begin(), nu0.end());
    auto yr = linear_ref(c, q.value, k.value, v.value, Sd, nud, decay.value, beta.value);
    std::printf("linear_decode rule %d map %d norm %d act %d dk %d dv %d group %d cols %d T %d\n", RULE, FEATURE_MAP, NORMALIZE, ACT_TYPE, dk, dv, GROUP, BLOCK_COLS, T);
    check("output", y.size(), [&](size_t i) { return oa::to_float(y[i]); }, yr, act_tolerance());
    check("state", S.size(), [&](size_t i) { return S[i]; }, Sd, ACT_TYPE == 0 ? 2e-5 : 1e-4);
    check("normalizer", nu.size(), [&](size_t i) { return nu[i]; }, nud, 2e-5);
    return g_failures ? 1 : 0;
}
