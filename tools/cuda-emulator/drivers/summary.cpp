#include "summary_attention_decode.cu"
#include "common_driver.h"
int main(int argc, char** argv)
{
    const int B = 2, Hkv = 2, G = GROUP, Hq = Hkv * G, dk = HEAD_DIM, dv = VALUE_DIM, S = SLOTS, kind = SUMMARY_KIND;
    const int T = atoi(argv[1]), M = atoi(argv[2]);
    long long past[2] = {atoll(argv[3]), atoll(argv[4])};
    const float alpha = 0.8f, scale = 0.3f;
    const int R = kind == 1 ? M : 0;
    Rng r(23 + T + M);
    auto q = make_act(r, (size_t)B * T * Hq * dk, -1, 1), k = make_act(r, (size_t)B * T * Hkv * dk, -1, 1), v = make_act(r, (size_t)B * T * Hkv * dv, -1, 1);
    std::vector<float> ks((size_t)B * Hkv * S * dk, 0), vs((size_t)B * Hkv * S * dv, 0), kw((size_t)B * Hkv * std::max(R, 1) * dk, 0), vw((size_t)B * Hkv * std::max(R, 1) * dv, 0);
    std::vector<double> eks(ks.size()), evs(vs.size()), ekw(kw.size(), 0), evw(vw.size(), 0), yref((size_t)B * T * Hq * dv);
    double a_s[16];
    for (int s = 0; s < S; ++s) a_s[s] = (double)(float)std::pow((double)alpha, std::pow(2.0, -s));
    for (int b = 0; b < B; ++b)
    for (int h = 0; h < Hkv; ++h) {
        const long long p0 = past[b], end = p0 + T;
        std::vector<std::vector<double>> hk(end, std::vector<double>(dk)), hv(end, std::vector<double>(dv));
        for (long long j = 0; j < p0; ++j) { for (auto& x : hk[j]) x = r.uniform(-1, 1); for (auto& x : hv[j]) x = r.uniform(-1, 1); }
        for (int t = 0; t < T; ++t) {
            for (int i = 0; i < dk; ++i) hk[p0 + t][i] = k.value[(((size_t)b * T + t) * Hkv + h) * dk + i];
            for (int j = 0; j < dv; ++j) hv[p0 + t][j] = v.value[(((size_t)b * T + t) * Hkv + h) * dv + j];
        }
        const size_t bh = b * Hkv + h;
        // numerators after n tokens
        auto numer = [&](long long n, int s, int d, const std::vector<std::vector<double>>& hx) {
            double x = 0;
            if (kind == 0) for (long long j = 0; j < n; ++j) x += hx[j][d];
            else if (kind == 1) for (long long j = std::max(0LL, n - M); j < n; ++j) x += hx[j][d];
            else for (long long j = 0; j < n; ++j) x += (1 - a_s[s]) * std::pow(a_s[s], (double)(n - 1 - j)) * hx[j][d];
            return x;
        };
        auto divisor = [&](long long n, int s) {
            return kind == 0 ? 1.0 / n : kind == 1 ? 1.0 / std::min<long long>(n, M) : 1.0 / (1 - std::pow(a_s[s], (double)n));
        };
        for (int s = 0; s < S; ++s) {
            for (int i = 0; i < dk; ++i) { ks[(bh * S + s) * dk + i] = (float)numer(p0, s, i, hk); eks[(bh * S + s) * dk + i] = numer(end, s, i, hk); }
            for (int j = 0; j < dv; ++j) { vs[(bh * S + s) * dv + j] = (float)numer(p0, s, j, hv); evs[(bh * S + s) * dv + j] = numer(end, s, j, hv); }
        }
        if (kind == 1) {
            for (long long j = std::max(0LL, p0 - M); j < p0; ++j) { for (int i = 0; i < dk; ++i) kw[(bh * M + j % M) * dk + i] = hk[j][i]; for (int e = 0; e < dv; ++e) vw[(bh * M + j % M) * dv + e] = hv[j][e]; }
            for (long long j = std::max(0LL, end - M); j < end; ++j) { for (int i = 0; i < dk; ++i) ekw[(bh * M + j % M) * dk + i] = hk[j][i]; for (int e = 0; e < dv; ++e) evw[(bh * M + j % M) * dv + e] = hv[j][e]; }
        }
        for (int t = 0; t < T; ++t) {
            const long long n = p0 + t + 1;
            for (int g = 0; g < G; ++g) {
                const int qh = h * G + g;
                const double* qq = &q.value[(((size_t)b * T + t) * Hq + qh) * dk];
                std::vector<double> z(S + 1);
                for (int s = 0; s < S; ++s) { double d = 0; for (int i = 0; i < dk; ++i) d += qq[i] * numer(n, s, i, hk) * divisor(n, s); z[s] = scale * d; }
                { double d = 0; for (int i = 0; i < dk; ++i) d += qq[i] * hk[n - 1][i]; z[S] = scale * d; }
                double m = *std::max_element(z.begin(), z.end()), tot = 0;
                for (auto& x : z) { x = std::exp(x - m); tot += x; }
                for (int j = 0; j < dv; ++j) {
                    double y = z[S] * hv[n - 1][j];
                    for (int s = 0; s < S; ++s) y += z[s] * numer(n, s, j, hv) * divisor(n, s);
                    yref[(((size_t)b * T + t) * Hq + qh) * dv + j] = y / tot;
                }
            }
        }
    }
    std::vector<float> oks(ks.size(), -7), ovs(vs.size(), -7), okw(kw.size(), -7), ovw(vw.size(), -7);
    std::vector<act_t> y(yref.size());
    std::vector<long long> pc = {past[0], past[1]}, npc(2);
    launch(dim3{(unsigned)(B * Hkv), 1, 1}, dim3{128, 1, 1}, [&] {
        summary_attention_decode(q.store.data(), k.store.data(), v.store.data(), ks.data(), vs.data(), pc.data(), kw.data(), vw.data(),
            y.data(), oks.data(), ovs.data(), npc.data(), okw.data(), ovw.data(), T, Hkv, M, alpha, scale);
    });
    std::printf("summary kind %d slots %d T %d M %d past %lld,%lld act %d dk %d dv %d group %d\n", kind, S, T, M, past[0], past[1], ACT_TYPE, dk, dv, G);
    check("output", y.size(), [&](size_t i) { return oa::to_float(y[i]); }, yref, act_tolerance() * 2);
    check("key summary", oks.size(), [&](size_t i) { return oks[i]; }, eks, 1e-5);
    check("value summary", ovs.size(), [&](size_t i) { return ovs[i]; }, evs, 1e-5);
    if (kind == 1) {
        check("key window", okw.size(), [&](size_t i) { return okw[i]; }, ekw, 1e-7);
        check("value window", ovw.size(), [&](size_t i) { return ovw[i]; }, evw, 1e-7);
    }
    std::vector<double> pref = {(double)past[0] + T, (double)past[1] + T};
    check("present count", 2, [&](size_t i) { return (double)npc[i]; }, pref, 0);
    return g_failures ? 1 : 0;
}
