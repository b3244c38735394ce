#include "profile.h"

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "common.h"

namespace cpt {
namespace cuda {
namespace profile {

bool active = false;

namespace {
struct Mark {
  const char* what;
  cudaEvent_t start, stop;
  cudaStream_t stream;
};
std::vector<Mark> marks;  // this profile's brackets, in launch order
std::vector<cudaEvent_t> spare;  // events of earlier profiles, reused
size_t used = 0;

cudaEvent_t event() {
  if (used < spare.size()) return spare[used++];
  cudaEvent_t e;
  CUDA_CHECK(cudaEventCreate(&e));
  spare.push_back(e);
  used++;
  return e;
}
}  // namespace

void begin(const char* what, cudaStream_t s) {
  Mark m{what, event(), event(), s};
  CUDA_CHECK(cudaEventRecord(m.start, s));
  marks.push_back(m);
}
// A failed record leaves the event unrecorded: stop() reports it, a destructor must not throw.
void end() noexcept { cudaEventRecord(marks.back().stop, marks.back().stream); }

void start() {
  marks.clear();
  used = 0;
  active = true;
}

std::string stop() {
  active = false;
  CUDA_CHECK(cudaDeviceSynchronize());
  struct Sum {
    int launches = 0;
    double ms = 0;
  };
  std::map<std::string, Sum> by;
  for (const Mark& m : marks) {
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, m.start, m.stop));
    // castKernel<__nv_bfloat16> and (splitHeadsKernel<float, __nv_bfloat16>) (parenthesised for
    // the launch macro) -> castKernel, splitHeadsKernel
    std::string name = m.what;
    name = name.substr(name[0] == '(', name.find('<') - (name[0] == '('));
    by[name].launches++, by[name].ms += ms;
  }
  std::string s;
  char line[256];
  for (const auto& kv : by) {
    std::snprintf(line, sizeof line, "%s\t%d\t%.4f\n", kv.first.c_str(), kv.second.launches, kv.second.ms);
    s += line;
  }
  return s;
}

}  // namespace profile
}  // namespace cuda
}  // namespace cpt
