// The row kernels every ISA variant provides (kernel.h), against long-double references:
// gelu and its derivative (exact and tanh forms) over a dense sweep of x and the values where
// the approximations change regime. Prints the worst error per kernel; exits 1 past the bound.
// Also one row of layer norm, on rows whose mean is large beside their spread (where a one-pass
// variance would cancel), the sum of squares and AdamW's update. Usage: kernel_check (run by test/native/kernels.test.ts).
#include <cmath>
#include <cstdio>
#include <vector>

#include "../src/kernel.h"

namespace {

struct Ref {
  long double y, s, phi;  // gelu, its smooth factor and the derivative's extra term (d = s + phi)
};
Ref ref(long double x, bool exact) {
  if (exact) {
    const long double s = 0.5L * std::erfc(-x / std::sqrt(2.0L));
    return {x * s, s, x * std::exp(-0.5L * x * x) / std::sqrt(2.0L * M_PIl)};
  }
  const long double c = std::sqrt(2.0L / M_PIl), u = c * (x + 0.044715L * x * x * x);
  const long double s = 1.0L / (1.0L + std::exp(-2.0L * u));
  return {x * s, s, 2.0L * x * s * (1.0L - s) * c * (1.0L + 3.0L * 0.044715L * x * x)};
}

}  // namespace

int main() {
  std::vector<float> xs;
  for (int i = -400000; i <= 400000; i++) xs.push_back(i * 5e-5f);  // [-20, 20]
  for (float x : {0.f, -0.f, 1e-30f, -1e-30f, 1e-7f, -1e-7f, 1e3f, -1e3f, 1e30f, -1e30f}) xs.push_back(x);
  const long n = (long)xs.size();  // 800,011: the vector tail runs too
  // Bounds: erfc's fit (1.2e-7) and exp (2e-7) relative, plus the float rounding of exp's
  // argument (~x^2/2), which grows with it: 4e-6 up to |x| = 5, 3e-5 beyond, where gelu is below
  // 1e-6 (exact) or 1e-10 (tanh) of x. (1 + erff in float loses all digits there.) The absolute
  // floor covers where the true value underflows float (gelu of x < -13).
  const double kNear = 4e-6, kFar = 3e-5, kFloor = 1e-30;
  bool ok = true;
  for (const char* name : {"scalar", "avx2", "avx512"}) {
    const cpt::Kernel* k = cpt::selectKernel(name);
    if (!k) {
      std::printf("%s: not supported here\n", name);
      continue;
    }
    for (int exact = 0; exact < 2; exact++) {
      std::vector<float> y(n), d(n, 1.f);
      k->gelu(xs.data(), y.data(), n, exact);
      k->geluBack(xs.data(), d.data(), n, exact);
      double worst[2][2] = {};  // [near, far][gelu, gelu']
      for (long i = 0; i < n; i++) {
        const Ref r = ref(xs[i], exact);
        const double e[2] = {std::fabs((double)(y[i] - r.y)) / ((double)std::fabs(r.y) + kFloor),
                             std::fabs((double)(d[i] - (r.s + r.phi))) / ((double)(std::fabs(r.s) + std::fabs(r.phi)) + kFloor)};
        double* w = worst[std::fabs(xs[i]) <= 5 ? 0 : 1];
        for (int j = 0; j < 2; j++)
          if (!(e[j] <= w[j])) w[j] = e[j];  // NaN propagates as the worst
      }
      const bool pass = worst[0][0] <= kNear && worst[0][1] <= kNear && worst[1][0] <= kFar && worst[1][1] <= kFar;
      ok = ok && pass;
      std::printf("%s %s: |x| <= 5: gelu rel err %.3g, gelu' %.3g (bound %.3g); beyond: %.3g, %.3g (bound %.3g) %s\n", name,
                  exact ? "exact" : "tanh", worst[0][0], worst[0][1], kNear, worst[1][0], worst[1][1], kFar,
                  pass ? "ok" : "FAIL");
    }
  }
  // Layer norm: rows of n values offset + sin-shaped noise of amplitude ~1. The mean is a float
  // (returned, and what is subtracted), so the reference centres on float(mean) too; y within
  // 4e-6 of it relative to max |y|, rstd within 4e-6 relative.
  for (const char* name : {"scalar", "avx2", "avx512"}) {
    const cpt::Kernel* k = cpt::selectKernel(name);
    if (!k) continue;
    double worst = 0;
    for (int n : {7, 64, 768, 2051, 5120})
      for (float offset : {0.f, 30.f, -300.f}) {
        std::vector<float> x(n), w(n), b(n), y(n);
        for (int j = 0; j < n; j++)
          x[j] = offset + std::sin(0.37f * j) + 0.25f * std::cos(1.7f * j), w[j] = 1.f + 0.5f * std::sin(0.11f * j),
          b[j] = 0.1f * std::cos(0.05f * j);
        float mean = 0, rstd = 0;
        k->layerNorm(x.data(), w.data(), b.data(), y.data(), n, 1e-5f, &mean, &rstd);
        long double mu = 0, var = 0;
        for (float v : x) mu += v;
        mu /= n;
        for (float v : x) var += (v - mu) * (v - mu);
        const long double rs = 1.0L / std::sqrt(var / n + 1e-5L), m = (float)mu;
        double maxY = 0, err = std::fmax(std::fabs((double)(rstd - rs)) / (double)rs, std::fabs((double)(mean - m)));
        for (int j = 0; j < n; j++) maxY = std::fmax(maxY, std::fabs((double)((x[j] - m) * rs * w[j] + b[j])));
        for (int j = 0; j < n; j++) {
          const double e = std::fabs((double)(y[j] - ((x[j] - m) * rs * w[j] + b[j]))) / maxY;
          if (!(e <= err)) err = e;
        }
        if (!(err <= worst)) worst = err;
      }
    const bool pass = worst <= 4e-6;
    ok = ok && pass;
    std::printf("%s layer norm: rel err %.3g (bound 4e-06) %s\n", name, worst, pass ? "ok" : "FAIL");
  }
  // Sum of squares and AdamW on 1,000,003 values (the vector tail too), against double.
  {
    const long n = 1000003;
    std::vector<float> g0(n), w0(n), m0(n), v0(n);
    for (long i = 0; i < n; i++)
      g0[i] = 1e-3f * std::sin(0.001f * i) * (1 + i % 7), w0[i] = 0.02f * std::cos(0.003f * i), m0[i] = 0.5f * g0[(i * 7) % n],
      v0[i] = 4 * m0[i] * m0[i] + 1e-12f;  // moments as training leaves them: |m| below sqrt(v)
    long double sq = 0;
    for (float x : g0) sq += (long double)x * x;
    const float coef = 0.7f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, stepSize = 1e-3f, bc2s = 0.3f, decay = 0.9999f;
    for (const char* name : {"scalar", "avx2", "avx512"}) {
      const cpt::Kernel* k = cpt::selectKernel(name);
      if (!k) continue;
      const double eSq = std::fabs((double)(k->sumSquares(g0.data(), n) - sq)) / (double)sq;
      std::vector<float> w = w0, g = g0, m = m0, v = v0;
      k->adamw(w.data(), g.data(), m.data(), v.data(), n, coef, b1, b2, eps, stepSize, bc2s, decay);
      double eW = 0, eM = 0, eV = 0, gLeft = 0;
      for (long i = 0; i < n; i++) {
        const double gi = (double)g0[i] * coef, mi = b1 * (double)m0[i] + (1 - (double)b1) * gi;
        const double vi = b2 * (double)v0[i] + (1 - (double)b2) * gi * gi;
        const double wi = w0[i] * (double)decay - stepSize * mi / (std::sqrt(vi) / bc2s + eps);
        eW = std::fmax(eW, std::fabs(w[i] - wi) / std::fmax(std::fabs(wi), 0.02)), eM = std::fmax(eM, std::fabs(m[i] - mi) / 7e-3);
        eV = std::fmax(eV, std::fabs(v[i] - vi) / 2e-4), gLeft = std::fmax(gLeft, std::fabs(g[i]));
      }
      const bool pass = eSq <= 1e-6 && eW <= 1e-6 && eM <= 1e-6 && eV <= 1e-6 && gLeft == 0;
      ok = ok && pass;
      std::printf("%s sum of squares rel err %.3g; adamw w/m/v err %.3g %.3g %.3g of their scale, gradient zeroed %s (bound 1e-06) %s\n",
                  name, eSq, eW, eM, eV, gLeft == 0 ? "yes" : "no", pass ? "ok" : "FAIL");
    }
  }
  return ok ? 0 : 1;
}
