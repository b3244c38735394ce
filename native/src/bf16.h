// Opt-in bf16 GEMM building blocks (AMX tiles or AVX512-BF16 dot products, fp32 accumulation).
// Operands are rounded to bf16 (round-to-nearest-even) when packed; results are fp32. Only plain
// C types cross this header: the implementation TUs are compiled for AMX/AVX-512 and must not emit
// any inline C++ that the rest of the (generic ISA) engine could end up sharing.
//
// Layouts (Mp = M rounded up to 32, Np = N rounded up to 32, Kp = K rounded up to 32; padding is
// zero): packed A holds 16-row panels, each [Kp/32][16][32] (one 1 KiB AMX tile per 32-deep
// step); packed B holds 16-column panels, each [Kp/2][16][2] (the VNNI pair layout TDPBF16PS
// expects), also 1 KiB per 32-deep step.
#pragma once
#include <cstddef>
#include <cstdint>

namespace cpt {
namespace bf16 {

// Which instructions run the bf16 products: AMX tiles (TDPBF16PS) or AVX-512 dot products
// (VDPBF16PS, for CPUs with AVX512-BF16 and no AMX: AMD Zen 4, Intel Cooper Lake).
enum class Path { none, amx, avx512 };

// amx: AMX-BF16 + AMX-TILE + AVX512-BF16, the OS enables tile state and this process was granted
// tile data (arch_prctl ARCH_REQ_XCOMP_PERM). avx512: AVX512F/BW/VL + AVX512-BF16 with ZMM state
// enabled. Checked once, cached.
bool supports(Path p);
// "auto" (AMX, else AVX512-BF16, else none), "amx" or "avx512bf16"; Path::none when the CPU
// lacks what was asked for. Throws std::invalid_argument for an unknown name.
Path select(const char* name);
const char* name(Path p);  // "amx", "avx512bf16", "none"

constexpr int kTile = 32;  // M, N and K are padded to multiples of this
inline int pad(int x) { return (x + kTile - 1) / kTile * kTile; }

// Pack rows [i0, i1) (i0, i1 multiples of 16; rows >= M are zero) of op(A) (M x K; ta: A is
// stored [K x M]) into dst (the whole packed A, Kp = pad(K)).
void packA(uint16_t* dst, bool ta, const float* A, int lda, int M, int K, int i0, int i1);
// Pack columns [j0, j1) (multiples of 16; columns >= N are zero) of op(B) (K x N; tb: B is stored
// [N x K]) into dst (the whole packed B).
void packB(uint16_t* dst, bool tb, const float* B, int ldb, int K, int N, int j0, int j1);
// This thread's buffer for the partial sums of chunked products, at least n floats, 64-byte
// aligned; kept across calls (a fresh one each call costs a page fault on every touch).
float* partials(size_t n);

// C[i0:i1, j0:j1] (= or +=) A B over the full depth, i0/i1/j0/j1 multiples of 32 (clipped to M, N
// when written), on the given path; with bias (length N) and not acc, C = A B + bias (a linear
// layer's output written once). kpB: B's padded depth when it was packed deeper than K (a
// product with the first K rows of a packed B); 0 for pad(K). Each block of C is summed in a
// fixed order whatever the split: results are bitwise independent of the thread count (but
// differ between paths).
void computeAmx(const uint16_t* Ap, const uint16_t* Bp, int M, int N, int K, int i0, int i1, int j0, int j1, float* C,
                int ldc, bool acc, const float* bias, int kpB);
void computeDp(const uint16_t* Ap, const uint16_t* Bp, int M, int N, int K, int i0, int i1, int j0, int j1, float* C,
               int ldc, bool acc, const float* bias, int kpB);
inline void compute(Path p, const uint16_t* Ap, const uint16_t* Bp, int M, int N, int K, int i0, int i1, int j0, int j1,
                    float* C, int ldc, bool acc, const float* bias = nullptr, int kpB = 0) {
  if (p == Path::amx) computeAmx(Ap, Bp, M, N, K, i0, i1, j0, j1, C, ldc, acc, bias, kpB);
  else computeDp(Ap, Bp, M, N, K, i0, i1, j0, j1, C, ldc, acc, bias, kpB);
}

}  // namespace bf16
}  // namespace cpt
