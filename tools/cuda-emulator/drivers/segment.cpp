#include "segment_attention_decode.cu"
#include "common_driver.h"
int main(int argc, char** argv)
{
    const int B = 2, Hkv = 2, G = GROUP, Hq = Hkv * G, dk = HEAD_DIM, dv = VALUE_DIM;
    const int L = atoi(argv[1]), splits = atoi(argv[2]);
    long long pos[2] = {atoll(argv[3]), atoll(argv[4])};
    const float scale = 0.25f;
    Rng r(11 + L);
    auto q = make_act(r, (size_t)B * Hq * dk, -1, 1), k = make_act(r, (size_t)B * Hkv * dk, -1, 1), v = make_act(r, (size_t)B * Hkv * dv, -1, 1);
    const size_t nk = (size_t)B * Hkv * L * dk, nv = (size_t)B * Hkv * L * dv;
    std::vector<float> mk(nk), mv(nv), sk(nk), sv(nv);
    for (auto* vec : {&mk, &mv, &sk, &sv}) for (auto& x : *vec) x = r.uniform(-9, 9);  // garbage
    std::vector<double> emk(nk, 0), emv(nv, 0), esk(nk, 0), esv(nv, 0), yref(B * Hq * dv);
    for (int b = 0; b < B; ++b)
    for (int h = 0; h < Hkv; ++h) {
        const long long p = pos[b], s = p / L; const int off = (int)(p % L);
        std::vector<std::vector<float>> hk(p + 1, std::vector<float>(dk)), hv(p + 1, std::vector<float>(dv));
        for (long long j = 0; j < p; ++j) { for (auto& x : hk[j]) x = r.uniform(-1, 1); for (auto& x : hv[j]) x = r.uniform(-1, 1); }
        for (int i = 0; i < dk; ++i) hk[p][i] = oa::to_float(k.store[(b * Hkv + h) * dk + i]);
        for (int j = 0; j < dv; ++j) hv[p][j] = oa::to_float(v.store[(b * Hkv + h) * dv + j]);
        const size_t bk = (size_t)(b * Hkv + h) * L * dk, bv = (size_t)(b * Hkv + h) * L * dv;
        if (s >= 1) for (int i = 0; i < L; ++i) { for (int e = 0; e < dk; ++e) mk[bk + i * dk + e] = hk[(s - 1) * L + i][e]; for (int e = 0; e < dv; ++e) mv[bv + i * dv + e] = hv[(s - 1) * L + i][e]; }
        for (int i = 0; i < off; ++i) { for (int e = 0; e < dk; ++e) sk[bk + i * dk + e] = hk[s * L + i][e]; for (int e = 0; e < dv; ++e) sv[bv + i * dv + e] = hv[s * L + i][e]; }
        if (off == L - 1) {
            for (int i = 0; i < L; ++i) { for (int e = 0; e < dk; ++e) emk[bk + i * dk + e] = hk[s * L + i][e]; for (int e = 0; e < dv; ++e) emv[bv + i * dv + e] = hv[s * L + i][e]; }
        } else {
            if (s >= 1) for (int i = 0; i < L; ++i) { for (int e = 0; e < dk; ++e) emk[bk + i * dk + e] = hk[(s - 1) * L + i][e]; for (int e = 0; e < dv; ++e) emv[bv + i * dv + e] = hv[(s - 1) * L + i][e]; }
            for (int i = 0; i <= off; ++i) { for (int e = 0; e < dk; ++e) esk[bk + i * dk + e] = hk[s * L + i][e]; for (int e = 0; e < dv; ++e) esv[bv + i * dv + e] = hv[s * L + i][e]; }
        }
        for (int g = 0; g < G; ++g) {
            const int qh = h * G + g;
            const long long first = std::max(0LL, (s - 1) * L);
            std::vector<double> sc;
            for (long long j = first; j <= p; ++j) { double d = 0; for (int i = 0; i < dk; ++i) d += q.value[(b * Hq + qh) * dk + i] * hk[j][i]; sc.push_back(scale * d); }
            double m = *std::max_element(sc.begin(), sc.end()), tot = 0;
            for (auto& x : sc) { x = std::exp(x - m); tot += x; }
            for (int j = 0; j < dv; ++j) { double y = 0; for (long long a = first; a <= p; ++a) y += sc[a - first] * hv[a][j]; yref[(b * Hq + qh) * dv + j] = y / tot; }
        }
    }
    std::vector<float> omk(nk, -7), omv(nv, -7), osk(nk, -7), osv(nv, -7);
    std::vector<act_t> y(B * Hq * dv);
    std::vector<long long> pp = {pos[0], pos[1]}, npp(2);
    std::vector<float> pacc(B * Hq * splits * dv), pmax(B * Hq * splits), psum(B * Hq * splits);
    launch(dim3{(unsigned)(B * Hkv), (unsigned)splits, 1}, dim3{128, 1, 1}, [&] {
        segment_attention_decode(q.store.data(), k.store.data(), v.store.data(), mk.data(), mv.data(), sk.data(), sv.data(), pp.data(),
            y.data(), omk.data(), omv.data(), osk.data(), osv.data(), npp.data(), pacc.data(), pmax.data(), psum.data(), Hkv, L, scale);
    });
    if (splits > 1) launch(dim3{(unsigned)(B * Hq), 1, 1}, dim3{128, 1, 1}, [&] { segment_attention_combine(pacc.data(), pmax.data(), psum.data(), y.data(), splits); });
    std::printf("segment L %d splits %d p %lld,%lld act %d dk %d dv %d group %d\n", L, splits, pos[0], pos[1], ACT_TYPE, dk, dv, G);
    check("output", y.size(), [&](size_t i) { return oa::to_float(y[i]); }, yref, act_tolerance());
    check("memory keys", nk, [&](size_t i) { return omk[i]; }, emk, 1e-7);
    check("memory values", nv, [&](size_t i) { return omv[i]; }, emv, 1e-7);
    check("segment keys", nk, [&](size_t i) { return osk[i]; }, esk, 1e-7);
    check("segment values", nv, [&](size_t i) { return osv[i]; }, esv, 1e-7);
    std::vector<double> pref = {(double)pos[0] + 1, (double)pos[1] + 1};
    check("present position", 2, [&](size_t i) { return (double)npp[i]; }, pref, 0);
    return g_failures ? 1 : 0;
}
