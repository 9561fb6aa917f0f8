#include "hybrid_attention_decode.cu"
#include "common_driver.h"
static double elu1(double x) { return x > 0 ? x + 1 : std::exp(x); }
int main(int argc, char** argv)
{
    const int B = 2, Hkv = 2, G = GROUP, Hq = Hkv * G, dk = HEAD_DIM, dv = VALUE_DIM;
    const int W = atoi(argv[1]), splits = atoi(argv[2]);
    long long pos[2] = {atoll(argv[3]), atoll(argv[4])};
    const bool mean = COMPRESS == 1;
    const float scale = 0.25f, eps = 1e-6f;
    Rng r(17 + W);
    auto q = make_act(r, (size_t)B * Hq * dk, -1, 1), k = make_act(r, (size_t)B * Hkv * dk, -1, 1), v = make_act(r, (size_t)B * Hkv * dv, -1, 1);
    const size_t nk = (size_t)B * Hkv * W * dk, nv = (size_t)B * Hkv * W * dv;
    const size_t nck = (size_t)B * Hkv * dk, ncv = mean ? (size_t)B * Hkv * dv : (size_t)B * Hkv * dk * dv;
    std::vector<float> rk(nk, 0), rv(nv, 0), ck(nck, 0), cv(ncv, 0);
    std::vector<double> erk(nk, 0), erv(nv, 0), eck(nck, 0), ecv(ncv, 0), yref(B * Hq * dv);
    for (int b = 0; b < B; ++b)
    for (int h = 0; h < Hkv; ++h) {
        const long long p = pos[b];
        std::vector<std::vector<float>> hk(p + 1, std::vector<float>(dk)), hv(p + 1, std::vector<float>(dv));
        for (long long j = 0; j < p; ++j) { for (auto& x : hk[j]) x = r.uniform(-1, 1); for (auto& x : hv[j]) x = r.uniform(-1, 1); }
        for (int i = 0; i < dk; ++i) hk[p][i] = oa::to_float(k.store[(b * Hkv + h) * dk + i]);
        for (int j = 0; j < dv; ++j) hv[p][j] = oa::to_float(v.store[(b * Hkv + h) * dv + j]);
        const size_t bh = b * Hkv + h;
        for (long long j = std::max(0LL, p - W); j < p; ++j) {
            for (int e = 0; e < dk; ++e) rk[(bh * W + j % W) * dk + e] = hk[j][e];
            for (int e = 0; e < dv; ++e) rv[(bh * W + j % W) * dv + e] = hv[j][e];
        }
        for (long long j = std::max(0LL, p + 1 - W); j <= p; ++j) {
            for (int e = 0; e < dk; ++e) erk[(bh * W + j % W) * dk + e] = hk[j][e];
            for (int e = 0; e < dv; ++e) erv[(bh * W + j % W) * dv + e] = hv[j][e];
        }
        // compressed state: past from positions < p - W, expected from positions <= p - W
        auto fold = [&](long long last, auto& K, auto& V) {
            for (long long j = 0; j <= last; ++j) {
                if (mean) { for (int e = 0; e < dk; ++e) K[bh * dk + e] += hk[j][e]; for (int e = 0; e < dv; ++e) V[bh * dv + e] += hv[j][e]; }
                else for (int i = 0; i < dk; ++i) { double f = elu1(hk[j][i]); K[bh * dk + i] += f; for (int e = 0; e < dv; ++e) V[(bh * dk + i) * dv + e] += f * hv[j][e]; }
            }
        };
        std::vector<double> tk(nck, 0), tv(ncv, 0);
        fold(p - W - 1, tk, tv);
        for (size_t i = 0; i < nck; ++i) if (i / dk == bh) ck[i] = (float)tk[i];
        for (size_t i = 0; i < ncv; ++i) if (i / (ncv / (B * Hkv)) == bh) cv[i] = (float)tv[i];
        fold(p - W, eck, ecv);
        const long long ne = std::max(0LL, p + 1 - W);
        for (int g = 0; g < G; ++g) {
            const int qh = h * G + g;
            const double* qq = &q.value[(b * Hq + qh) * dk];
            std::vector<double> sc; std::vector<const float*> vals;
            for (long long j = std::max(0LL, p - W + 1); j <= p; ++j) { double d = 0; for (int i = 0; i < dk; ++i) d += qq[i] * hk[j][i]; sc.push_back(scale * d); }
            std::vector<double> mk(dk), mvv(dv);
            if (mean && ne > 0) {
                for (int i = 0; i < dk; ++i) mk[i] = eck[bh * dk + i] / ne;
                for (int e = 0; e < dv; ++e) mvv[e] = ecv[bh * dv + e] / ne;
                double d = 0; for (int i = 0; i < dk; ++i) d += qq[i] * mk[i]; sc.push_back(scale * d);
            }
            double m = *std::max_element(sc.begin(), sc.end()), tot = 0;
            for (auto& x : sc) { x = std::exp(x - m); tot += x; }
            for (int e = 0; e < dv; ++e) {
                double y = 0; size_t a = 0;
                for (long long j = std::max(0LL, p - W + 1); j <= p; ++j, ++a) y += sc[a] * hv[j][e];
                if (mean && ne > 0) y += sc[a] * mvv[e];
                y /= tot;
                if (!mean && ne > 0) {
                    double num = 0, den = eps;
                    for (int i = 0; i < dk; ++i) { double f = elu1(qq[i]); num += f * ecv[(bh * dk + i) * dv + e]; den += f * eck[bh * dk + i]; }
                    double gt = (double)ne / (p + 1);
                    y = (1 - gt) * y + gt * num / den;
                }
                yref[(b * Hq + qh) * dv + e] = y;
            }
        }
    }
    std::vector<float> ork(nk, -7), orv(nv, -7), ock(nck, -7), ocv(ncv, -7), wout(B * Hq * dv);
    std::vector<act_t> y(B * Hq * dv);
    std::vector<long long> pp = {pos[0], pos[1]}, npp(2);
    std::vector<float> pacc(B * Hq * splits * dv), pmax(B * Hq * splits), psum(B * Hq * splits);
    launch(dim3{(unsigned)(B * Hkv), (unsigned)splits, 1}, dim3{128, 1, 1}, [&] {
        hybrid_attention_decode(q.store.data(), k.store.data(), v.store.data(), rk.data(), rv.data(), pp.data(), ck.data(), cv.data(),
            mean && splits == 1 ? y.data() : nullptr, !mean && splits == 1 ? wout.data() : nullptr, ork.data(), orv.data(), npp.data(),
            mean ? ock.data() : nullptr, mean ? ocv.data() : nullptr, pacc.data(), pmax.data(), psum.data(), Hkv, W, scale);
    });
    if (splits > 1) launch(dim3{(unsigned)(B * Hq), 1, 1}, dim3{128, 1, 1}, [&] {
        hybrid_attention_combine(pacc.data(), pmax.data(), psum.data(), mean ? y.data() : nullptr, mean ? nullptr : wout.data(), splits); });
    if (!mean) launch(dim3{(unsigned)(B * Hkv), (unsigned)((dv + 31) / 32), 1}, dim3{128, 1, 1}, [&] {
        hybrid_attention_linear(q.store.data(), rk.data(), rv.data(), pp.data(), ck.data(), cv.data(), wout.data(), y.data(), ock.data(), ocv.data(), Hkv, W, eps); });
    std::printf("hybrid %s W %d splits %d p %lld,%lld act %d dk %d dv %d group %d\n", mean ? "mean" : "linear", W, splits, pos[0], pos[1], ACT_TYPE, dk, dv, G);
    check("output", y.size(), [&](size_t i) { return oa::to_float(y[i]); }, yref, act_tolerance());
    check("ring keys", nk, [&](size_t i) { return ork[i]; }, erk, 1e-7);
    check("ring values", nv, [&](size_t i) { return orv[i]; }, erv, 1e-7);
    check("compressed key", nck, [&](size_t i) { return ock[i]; }, eck, 1e-6);
    check("compressed value", ncv, [&](size_t i) { return ocv[i]; }, ecv, 1e-6);
    return g_failures ? 1 : 0;
}
