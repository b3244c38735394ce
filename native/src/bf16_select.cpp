// Run-time detection and choice of the bf16 GEMM path; generic ISA.
#include "bf16.h"

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace cpt {
namespace bf16 {

namespace {
struct Caps {
  bool avx512 = false, amx = false;
};

Caps detect() {
  Caps caps;
  unsigned a, b, c, d;
  if (__get_cpuid_max(0, nullptr) < 7) return caps;
  __cpuid_count(1, 0, a, b, c, d);
  if (!(c & (1u << 27))) return caps;  // OSXSAVE
  __cpuid_count(7, 0, a, b, c, d);
  const bool avx512f = b & (1u << 16), avx512bw = b & (1u << 30), avx512vl = b & (1u << 31);
  const bool amxBf16 = d & (1u << 22), amxTile = d & (1u << 24);
  __cpuid_count(7, 1, a, b, c, d);
  const bool avx512Bf16 = a & (1u << 5);
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  const unsigned long long xcr0 = ((unsigned long long)hi << 32) | lo;
  const unsigned long long zmm = (1ull << 1) | (1ull << 2) | (7ull << 5), tile = 3ull << 17;  // SSE AVX ZMM | TILE
  caps.avx512 = avx512f && avx512bw && avx512vl && avx512Bf16 && (xcr0 & zmm) == zmm;
  if (caps.avx512 && amxBf16 && amxTile && (xcr0 & tile) == tile) {
    // Linux >= 5.16 hands out the (large) tile data state only on request, once per process.
    constexpr long ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18;
    caps.amx = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
  }
  return caps;
}

const Caps& caps() {
  static const Caps c = detect();
  return c;
}
}  // namespace

bool supports(Path p) { return p == Path::amx ? caps().amx : p == Path::avx512 ? caps().avx512 : true; }

}  // namespace bf16
}  // namespace cpt
#else
namespace cpt {
namespace bf16 {
bool supports(Path p) { return p == Path::none; }
}  // namespace bf16
}  // namespace cpt
#endif

namespace cpt {
namespace bf16 {

Path select(const char* n) {
  const std::string s = n && *n ? n : "auto";
  if (s == "auto") return supports(Path::amx) ? Path::amx : supports(Path::avx512) ? Path::avx512 : Path::none;
  if (s == "amx") return supports(Path::amx) ? Path::amx : Path::none;
  if (s == "avx512bf16") return supports(Path::avx512) ? Path::avx512 : Path::none;
  throw std::invalid_argument("bf16 kernel \"" + s + "\" is unknown (auto, amx, avx512bf16)");
}

const char* name(Path p) { return p == Path::amx ? "amx" : p == Path::avx512 ? "avx512bf16" : "none"; }

float* partials(size_t n) {
  static thread_local float* buf = nullptr;
  static thread_local size_t cap = 0;
  if (n > cap) {
    std::free(buf);
    buf = static_cast<float*>(std::aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64));
    if (!buf) std::abort();
    cap = n;
  }
  return buf;
}

}  // namespace bf16
}  // namespace cpt
