#pragma once
#include <random>
#include <vector>
#include <cstdio>
#include <cmath>
#include <string>
// act_t, oa::to_float/from_float come from the kernel TU.
struct Rng {
    std::mt19937 g;
    explicit Rng(unsigned seed) : g(seed) {}
    float uniform(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(g); }
};
// Activation tensor: storage in act_t and the float value each element really has after rounding.
struct Act {
    std::vector<act_t> store;
    std::vector<double> value;
};
inline Act make_act(Rng& r, size_t n, float lo, float hi)
{
    Act a; a.store.resize(n); a.value.resize(n);
    for (size_t i = 0; i < n; ++i) {
        a.store[i] = oa::from_float(r.uniform(lo, hi));
        a.value[i] = oa::to_float(a.store[i]);
    }
    return a;
}
inline std::vector<float> make_float(Rng& r, size_t n, float lo, float hi)
{
    std::vector<float> v(n);
    for (auto& x : v) x = r.uniform(lo, hi);
    return v;
}
inline int g_failures = 0;
// max |got - want| / (atol_scale * max|want| + ...) style check
template <class G>
inline void check(const char* what, size_t n, G got, const std::vector<double>& want, double rel)
{
    double maxabs = 0, maxerr = 0; size_t at = 0;
    for (size_t i = 0; i < n; ++i) maxabs = std::max(maxabs, std::fabs(want[i]));
    for (size_t i = 0; i < n; ++i) {
        double e = std::fabs((double)got(i) - want[i]);
        if (!(e <= maxerr)) { maxerr = e; at = i; }
    }
    const double tol = rel * std::max(maxabs, 1e-3);
    const bool ok = maxerr <= tol;
    if (!ok) ++g_failures;
    std::printf("  %-28s max err %.3g (tol %.3g, max|ref| %.3g) at %zu: got %.6g want %.6g %s\n", what, maxerr, tol, maxabs, at,
        (double)got(at), want[at], ok ? "ok" : "FAIL");
}
inline double act_tolerance() { return ACT_TYPE == 0 ? 2e-5 : ACT_TYPE == 1 ? 4e-3 : 3e-2; }
