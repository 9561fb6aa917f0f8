#include "window_attention_decode.cu"
#include "common_driver.h"
// Independent reference: a history of positions 0..p, the past cache laid out from it per the doc, attention over
// A(p) straight from the definition.
int main(int argc, char** argv)
{
    const int B = 2, Hkv = 2, G = GROUP, Hq = Hkv * G, dk = HEAD_DIM, dv = VALUE_DIM;
    const int W = atoi(argv[1]), S = atoi(argv[2]), splits = atoi(argv[3]);
    const long long p0 = atoll(argv[4]), p1 = atoll(argv[5]);  // positions of batch rows 0 and 1
    const float softcap = argc > 6 ? atof(argv[6]) : 0.0f;
    const int rows = S + W;
    const float scale = 0.2f;
    Rng r(7 + W * 13 + S);
    long long pos[2] = {p0, p1};
    auto q = make_act(r, (size_t)B * Hq * dk, -1, 1), k = make_act(r, (size_t)B * Hkv * dk, -1, 1), v = make_act(r, (size_t)B * Hkv * dv, -1, 1);
    // history keys/values as float32 (caches are float32)
    std::vector<float> pk(B * Hkv * rows * dk), pv(B * Hkv * rows * dv);
    for (auto& x : pk) x = r.uniform(-9, 9);  // garbage where no position was written
    for (auto& x : pv) x = r.uniform(-9, 9);
    std::vector<double> yref(B * Hq * dv);
    std::vector<double> kref(pk.begin(), pk.end()), vref(pv.begin(), pv.end());
    for (int b = 0; b < B; ++b)
    for (int h = 0; h < Hkv; ++h) {
        const long long p = pos[b];
        std::vector<std::vector<float>> hk(p + 1), hv(p + 1);
        for (long long j = 0; j < p; ++j) {
            hk[j].resize(dk); hv[j].resize(dv);
            for (auto& x : hk[j]) x = r.uniform(-1, 1);
            for (auto& x : hv[j]) x = r.uniform(-1, 1);
        }
        hk[p].resize(dk); hv[p].resize(dv);
        for (int i = 0; i < dk; ++i) hk[p][i] = oa::to_float(k.store[(b * Hkv + h) * dk + i]);
        for (int j = 0; j < dv; ++j) hv[p][j] = oa::to_float(v.store[(b * Hkv + h) * dv + j]);
        float* ck = &pk[((size_t)(b * Hkv + h)) * rows * dk];
        float* cv = &pv[((size_t)(b * Hkv + h)) * rows * dv];
        double* ek = &kref[((size_t)(b * Hkv + h)) * rows * dk];
        double* ev = &vref[((size_t)(b * Hkv + h)) * rows * dv];
        auto put = [&](float* c, double* e, int row, const std::vector<float>& x, int d, bool past) {
            for (int i = 0; i < d; ++i) { if (past) c[row * d + i] = x[i]; e[row * d + i] = x[i]; }
        };
        for (long long j = 0; j < p; ++j) {
            if (j < S) { put(ck, ek, (int)j, hk[j], dk, true); put(cv, ev, (int)j, hv[j], dv, true); }
            if (j >= p - W) { put(ck, ek, S + (int)(j % W), hk[j], dk, true); put(cv, ev, S + (int)(j % W), hv[j], dv, true); }
        }
        // present after writing p
        if (p < S) { put(ck, ek, (int)p, hk[p], dk, false); put(cv, ev, (int)p, hv[p], dv, false); }
        put(ck, ek, S + (int)(p % W), hk[p], dk, false); put(cv, ev, S + (int)(p % W), hv[p], dv, false);
        for (int g = 0; g < G; ++g) {
            const int qh = h * G + g;
            std::vector<long long> att;
            for (long long j = 0; j <= p; ++j) if (j >= p - W + 1 || j < S) att.push_back(j);
            std::vector<double> sc;
            for (long long j : att) {
                double d = 0; for (int i = 0; i < dk; ++i) d += q.value[(b * Hq + qh) * dk + i] * hk[j][i];
                d *= scale; if (softcap > 0) d = softcap * std::tanh(d / softcap);
                sc.push_back(d);
            }
            double m = *std::max_element(sc.begin(), sc.end()), tot = 0;
            for (auto& x : sc) { x = std::exp(x - m); tot += x; }
            for (int j = 0; j < dv; ++j) {
                double y = 0; for (size_t a = 0; a < att.size(); ++a) y += sc[a] * hv[att[a]][j];
                yref[(b * Hq + qh) * dv + j] = y / tot;
            }
        }
    }
    std::vector<float> nk(pk.size()), nv(pv.size());
    std::vector<act_t> y(B * Hq * dv);
    std::vector<long long> past_pos = {p0, p1}, present_pos(2, -1);
    std::vector<float> pacc(B * Hq * splits * dv), pmax(B * Hq * splits), psum(B * Hq * splits);
    launch(dim3{(unsigned)(B * Hkv), (unsigned)splits, 1}, dim3{128, 1, 1}, [&] {
        window_attention_decode(q.store.data(), k.store.data(), v.store.data(), pk.data(), pv.data(), past_pos.data(), 1,
            y.data(), nk.data(), nv.data(), present_pos.data(), pacc.data(), pmax.data(), psum.data(), Hkv, W, S, scale, softcap);
    });
    if (splits > 1) {
        launch(dim3{(unsigned)(B * Hq), 1, 1}, dim3{128, 1, 1}, [&] {
            window_attention_combine(pacc.data(), pmax.data(), psum.data(), y.data(), splits);
        });
    }
    std::printf("window W %d S %d splits %d p %lld,%lld softcap %g act %d dk %d dv %d group %d\n", W, S, splits, p0, p1, softcap, ACT_TYPE, dk, dv, G);
    check("output", y.size(), [&](size_t i) { return oa::to_float(y[i]); }, yref, act_tolerance());
    check("present keys", nk.size(), [&](size_t i) { return nk[i]; }, kref, 1e-7);
    check("present values", nv.size(), [&](size_t i) { return nv[i]; }, vref, 1e-7);
    std::vector<double> pref = {(double)p0 + 1, (double)p1 + 1};
    check("present position", 2, [&](size_t i) { return (double)present_pos[i]; }, pref, 0);
    // in place: same result when present aliases past
    std::vector<act_t> y2(y.size());
    std::vector<float> ik(pk), iv(pv);
    launch(dim3{(unsigned)(B * Hkv), 1, 1}, dim3{128, 1, 1}, [&] {
        window_attention_decode(q.store.data(), k.store.data(), v.store.data(), ik.data(), iv.data(), past_pos.data(), 1,
            y2.data(), ik.data(), iv.data(), nullptr, nullptr, nullptr, nullptr, Hkv, W, S, scale, softcap);
    });
    check("in-place output", y2.size(), [&](size_t i) { return oa::to_float(y2[i]); }, yref, act_tolerance());
    check("in-place keys", ik.size(), [&](size_t i) { return ik[i]; }, kref, 1e-7);
    return g_failures ? 1 : 0;
}
