// Run-time detection for the bf16 (AMX) GEMM path; generic ISA.
#include "bf16.h"

#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace cpt {
namespace bf16 {

static bool detect() {
  unsigned a, b, c, d;
  if (__get_cpuid_max(0, nullptr) < 7) return false;
  __cpuid_count(1, 0, a, b, c, d);
  if (!(c & (1u << 27))) return false;  // OSXSAVE
  __cpuid_count(7, 0, a, b, c, d);
  const bool avx512f = b & (1u << 16), avx512bw = b & (1u << 30);
  const bool amxBf16 = d & (1u << 22), amxTile = d & (1u << 24);
  __cpuid_count(7, 1, a, b, c, d);
  const bool avx512Bf16 = a & (1u << 5);
  if (!(avx512f && avx512bw && amxBf16 && amxTile && avx512Bf16)) return false;
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  const unsigned long long xcr0 = ((unsigned long long)hi << 32) | lo;
  const unsigned long long need = (1ull << 1) | (1ull << 2) | (7ull << 5) | (3ull << 17);  // SSE AVX ZMM TILE
  if ((xcr0 & need) != need) return false;
  // Linux >= 5.16 hands out the (large) tile data state only on request, once per process.
  constexpr long ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18;
  return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}

bool available() {
  static const bool ok = detect();
  return ok;
}

}  // namespace bf16
}  // namespace cpt
#else
namespace cpt { namespace bf16 { bool available() { return false; } } }
#endif
