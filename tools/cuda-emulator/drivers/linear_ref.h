#pragma once
#include <vector>
#include <cmath>
struct LinCfg { int B, T, Hq, Hkv, dk, dv, rule, fmap; bool normalize, gatePerKey, betaPerHead; double gamma, eps, scale; };
inline std::vector<double> phi(const LinCfg& c, const double* x, double scale)
{
    std::vector<double> r(c.dk);
    if (c.fmap == 4) {
        double ss = 0; for (int i = 0; i < c.dk; ++i) ss += x[i] * x[i];
        double n = std::sqrt(ss + 1e-6);
        for (int i = 0; i < c.dk; ++i) r[i] = scale * x[i] / n;
        return r;
    }
    for (int i = 0; i < c.dk; ++i) {
        double v = scale * x[i];
        switch (c.fmap) {
            case 0: r[i] = v > 0 ? v + 1 : std::exp(v); break;
            case 1: r[i] = std::max(v, 0.0); break;
            case 2: r[i] = v; break;
            default: r[i] = std::max(v, 0.0) * std::max(v, 0.0); break;
        }
    }
    return r;
}
// S [B,Hkv,dk,dv], nu [B,Hkv,dk] updated in place; returns y [B,T,Hq,dv]
inline std::vector<double> linear_ref(const LinCfg& c, const std::vector<double>& q, const std::vector<double>& k,
    const std::vector<double>& v, std::vector<double>& S, std::vector<double>& nu, const std::vector<double>& decay,
    const std::vector<double>& beta)
{
    const bool gated = c.rule == 1 || c.rule == 3, delta = c.rule >= 2;
    const int G = c.Hq / c.Hkv;
    std::vector<double> y((size_t)c.B * c.T * c.Hq * c.dv);
    for (int b = 0; b < c.B; ++b)
    for (int t = 0; t < c.T; ++t) {
        const long row = (long)b * c.T + t;
        for (int h = 0; h < c.Hkv; ++h) {
            auto pk = phi(c, &k[(row * c.Hkv + h) * c.dk], 1.0);
            double* s = &S[((long)b * c.Hkv + h) * c.dk * c.dv];
            double* n = &nu[((long)b * c.Hkv + h) * c.dk];
            for (int i = 0; i < c.dk; ++i) {
                double g = !gated ? 0 : c.gatePerKey ? decay[(row * c.Hkv + h) * c.dk + i] : decay[row * c.Hkv + h];
                double a = c.gamma * std::exp(g);
                n[i] *= a;
                for (int j = 0; j < c.dv; ++j) s[i * c.dv + j] *= a;
            }
            std::vector<double> w(c.dv); double nw = 1;
            for (int j = 0; j < c.dv; ++j) w[j] = v[(row * c.Hkv + h) * c.dv + j];
            if (delta) {
                double bt = c.betaPerHead ? beta[row * c.Hkv + h] : beta[row];
                double r1 = 0; for (int i = 0; i < c.dk; ++i) r1 += n[i] * pk[i];
                nw = bt * (1 - r1);
                for (int j = 0; j < c.dv; ++j) { double r = 0; for (int i = 0; i < c.dk; ++i) r += s[i * c.dv + j] * pk[i]; w[j] = bt * (w[j] - r); }
            }
            for (int i = 0; i < c.dk; ++i) { n[i] += pk[i] * nw; for (int j = 0; j < c.dv; ++j) s[i * c.dv + j] += pk[i] * w[j]; }
        }
        for (int qh = 0; qh < c.Hq; ++qh) {
            int h = qh / G;
            auto pq = phi(c, &q[(row * c.Hq + qh) * c.dk], c.scale);
            const double* s = &S[((long)b * c.Hkv + h) * c.dk * c.dv];
            const double* n = &nu[((long)b * c.Hkv + h) * c.dk];
            double den = c.eps; for (int i = 0; i < c.dk; ++i) den += pq[i] * n[i];
            for (int j = 0; j < c.dv; ++j) {
                double a = 0; for (int i = 0; i < c.dk; ++i) a += pq[i] * s[i * c.dv + j];
                y[(row * c.Hq + qh) * c.dv + j] = c.normalize ? a / den : a;
            }
        }
    }
    return y;
}
