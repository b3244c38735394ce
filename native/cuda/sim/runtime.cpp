// cuda-sim's runtime: device memory, launches and the SIMT scheduler (README.md beside this file).
//
// Memory: every cudaMalloc is its own mapping with an inaccessible page on each side, the data
// placed so that it ends within 256 bytes of the page after it (cudaMalloc's alignment), filled
// with a poison pattern of its own (a NaN in fp32 and in bf16, a huge int32), and the bytes
// around it are canaries checked after every launch. An access past either page faults, and the
// fault is reported as the kernel, block and thread that made it.
//
// Launches: blocks run one after another; each thread of a block is a fiber (its own stack,
// switched by a few instructions) that runs until it reaches __syncthreads, a warp collective or
// its end. The scheduler always resumes the first ready thread in the order chosen by
// $CPT_SIM_ORDER (forward, reverse or shuffled; $CPT_SIM_SEED), so one warp runs as far ahead of
// the others as the synchronisation allows: a missing barrier shows up as a wrong value. A
// barrier that not every thread reaches, threads at different barriers, a shuffle whose mask
// names a lane that is elsewhere, and a lane outside its own mask are errors, reported with the
// source lines where each group of threads waits.
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpt_sim.h"
#include "cuda_runtime.h"
#include "internal.h"

#if defined(__SANITIZE_ADDRESS__)
#define CPT_SIM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CPT_SIM_ASAN 1
#endif
#endif
#ifdef CPT_SIM_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace cpt_sim {

__attribute__((tls_model("initial-exec"))) thread_local const ThreadCoords* tlsCoords = nullptr;

namespace {

// ---- settings
enum class Order { forward, reverse, shuffled };
struct Settings {
  Order order = Order::forward;
  uint64_t seed = 1;
  size_t stack = 0;
  bool asyncEarly = false;  // cp.async copies land when issued, else when a wait releases them
};
const Settings& settings() {
  static const Settings s = [] {
    Settings r;
    const char* o = std::getenv("CPT_SIM_ORDER");
    const std::string v = o ? o : "forward";
    if (v == "reverse") r.order = Order::reverse;
    else if (v == "shuffled") r.order = Order::shuffled;
    else if (v != "forward" && !v.empty()) {
      std::fprintf(stderr, "cuda-sim: CPT_SIM_ORDER must be forward, reverse or shuffled, got \"%s\"\n", v.c_str());
      std::exit(2);
    }
    if (const char* s = std::getenv("CPT_SIM_SEED")) r.seed = std::strtoull(s, nullptr, 10);
    const char* a = std::getenv("CPT_SIM_CP_ASYNC");
    const std::string av = a ? a : "late";
    if (av != "late" && av != "early" && !av.empty()) {
      std::fprintf(stderr, "cuda-sim: CPT_SIM_CP_ASYNC must be late or early, got \"%s\"\n", av.c_str());
      std::exit(2);
    }
    r.asyncEarly = av == "early";
#ifdef CPT_SIM_ASAN
    r.stack = 256 << 10;
#else
    r.stack = 64 << 10;
#endif
    if (const char* k = std::getenv("CPT_SIM_STACK_KB")) r.stack = std::strtoull(k, nullptr, 10) << 10;
    return r;
  }();
  return s;
}

std::atomic<bool> planMode{[] {
  const char* p = std::getenv("CPT_SIM_PLAN");
  return p && *p && std::string(p) != "0";
}()};

// ---- errors: the last error (cudaGetLastError) and a detail string for cudaGetErrorString.
thread_local cudaError_t lastError = cudaSuccess;
thread_local std::string lastDetail;

cudaError_t fail(cudaError_t e, const std::string& detail) {
  lastError = e;
  lastDetail = detail;
  return e;
}

[[noreturn]] void fault(const std::string& what) { throw std::runtime_error("cuda-sim: " + what); }

std::string hex(const void* p) {
  char b[32];
  std::snprintf(b, sizeof b, "%p", p);
  return b;
}

// ---- device memory
const size_t kPage = (size_t)sysconf(_SC_PAGESIZE);
constexpr unsigned char kCanary = 0xA5;
constexpr size_t kAlign = 256;
size_t roundUp(size_t x, size_t a) { return (x + a - 1) / a * a; }

struct Alloc {
  uintptr_t base;
  size_t size;  // bytes asked for
  int id;
  char* region;  // the whole mapping: guard page, front gap, data, slack, guard page
  size_t regionSize;
  bool plan;
};

struct Memory {
  std::mutex mu;
  std::map<uintptr_t, Alloc> byBase;
  size_t current = 0, peak = 0;
  size_t limit = [] {
    const char* m = std::getenv("CPT_SIM_MEM_MB");
    return (size_t)(m && *m ? std::strtoull(m, nullptr, 10) : 81920) << 20;
  }();
  int nextId = 1;

  // The allocation holding [p, p + bytes), bytes 0 meaning p itself (its end counts as inside).
  const Alloc* find(const void* p, size_t bytes = 0) {
    const uintptr_t a = (uintptr_t)p;
    auto it = byBase.upper_bound(a);
    if (it == byBase.begin()) return nullptr;
    --it;
    const Alloc& x = it->second;
    if (a < x.base || a > x.base + x.size) return nullptr;
    if (bytes && a + bytes > x.base + x.size) return nullptr;
    return &x;
  }
  // The allocation whose mapping holds p (a guard page or a gap included).
  const Alloc* near(uintptr_t a) {
    for (auto& kv : byBase)
      if (a >= (uintptr_t)kv.second.region && a < (uintptr_t)kv.second.region + kv.second.regionSize) return &kv.second;
    return nullptr;
  }
};
Memory& mem() {
  static Memory* m = new Memory;  // never destroyed: engines may be freed after static destructors
  return *m;
}

uint32_t poisonWord(int id) {
  const uint32_t h = 0x7F80u | (uint32_t)(1 + id % 127);  // a bf16 NaN; two of them an fp32 NaN
  return h << 16 | h;
}

void fillPoison(char* p, size_t n, int id) {
  const uint32_t w = poisonWord(id);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) std::memcpy(p + i, &w, 4);
  for (; i < n; i++) p[i] = (char)(w >> (8 * (i % 4)));
}

// Canaries in the front gap (last 256 bytes before the data) and the slack after it.
std::string checkCanaries(const Alloc& a) {
  if (a.plan) return "";
  const char* data = (const char*)a.base;
  const char* front = std::max<const char*>(a.region + kPage, data - kAlign);
  for (const char* c = front; c < data; c++)
    if ((unsigned char)*c != kCanary)
      return "a write " + std::to_string(data - c) + " bytes before the start of allocation #" + std::to_string(a.id) +
             " (" + std::to_string(a.size) + " bytes)";
  const char* end = data + a.size;
  const char* limit = a.region + a.regionSize - kPage;
  for (const char* c = end; c < limit; c++)
    if ((unsigned char)*c != kCanary)
      return "a write " + std::to_string(c - end) + " bytes past the end of allocation #" + std::to_string(a.id) + " (" +
             std::to_string(a.size) + " bytes)";
  return "";
}

// ---- fibers
#if defined(__x86_64__)
// Saves the callee-saved registers on the current stack, stores the stack pointer in *from, and
// continues on `to` (a stack saved the same way). The FP control state (MXCSR, x87 control word)
// is shared by all fibers: device code does not change rounding modes.
extern "C" void cpt_sim_switch(void** from, void* to);
asm(R"(
  .text
  .globl cpt_sim_switch
  .type cpt_sim_switch, @function
cpt_sim_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size cpt_sim_switch, .-cpt_sim_switch
  .section .note.GNU-stack,"",@progbits
  .text
)");
#endif

enum class State { ready, barrier, warp, done };
constexpr int kMaxThreadsPerBlock = 1024;

// Threads that may run, by scheduling position: the first one runs next.
struct ReadyQueue {
  uint64_t bits[kMaxThreadsPerBlock / 64] = {};
  int count = 0;
  void push(int pos) {
    bits[pos >> 6] |= 1ull << (pos & 63);
    count++;
  }
  bool empty() const { return count == 0; }
  int pop() {
    int w = 0;
    while (!bits[w]) w++;
    const int p = w * 64 + __builtin_ctzll(bits[w]);
    bits[w] &= bits[w] - 1;
    count--;
    return p;
  }
  void clear() {
    std::memset(bits, 0, sizeof bits);
    count = 0;
  }
};

struct Fiber {
  char* stack = nullptr;  // lowest usable byte (a guard page below it)
  size_t stackSize = 0;
#if defined(__x86_64__)
  void* sp = nullptr;
#else
  ucontext_t ctx;
#endif
  ThreadCoords coords;
  int index = 0;  // linear thread index in the block
  State state = State::ready;
  const char* file = nullptr;
  int line = 0;
  WarpOp op = WarpOp::sync;
  unsigned mask = 0;
  uint64_t value = 0, result = 0;
  int arg = 0, width = 32;
  // cp.async: copies issued since the last commit, and the committed groups not yet waited for
  struct Copy {
    void* dst;
    const void* src;
    size_t n;
  };
  std::vector<Copy> open;
  std::deque<std::vector<Copy>> groups;
#ifdef CPT_SIM_ASAN
  void* fake = nullptr;
  char* finishedAt = nullptr;  // a finished fiber's deepest live frame (see fiberMain)
#endif
};

struct Worker;
void fiberMain();

// Per host thread: the fibers of the block being run (stacks kept from block to block) and the
// scheduler's state. Fibers hand over to each other directly; the scheduler's own context is
// entered only when a block ends, deadlocks or fails.
struct Worker {
  std::vector<Fiber> fibers;
#if defined(__x86_64__)
  void* schedSp = nullptr;
#else
  ucontext_t schedCtx;
#endif
  Fiber* current = nullptr;  // the running fiber; null in the scheduler
  const Launch* launch = nullptr;
  dim3 block;
  void (*body)(void*) = nullptr;
  void* ctx = nullptr;
  int n = 0, atBarrier = 0, done = 0;
  bool abandoned = false;  // the last block failed: its fibers' stacks were left mid-call
  std::string error;  // set by a fiber: the block is abandoned and this is thrown
  std::vector<char> smem;
  std::vector<float> warpTiles;   // mma.sync's and ldmatrix's per-warp exchange (mma.h)
  uint64_t mmaLanes = 0, ldmatrixBytes = 0, wavefronts = 0;  // the running launch's (countWork)
  std::vector<int> pos, byPos;    // scheduling position of each thread, and its inverse
  std::vector<unsigned> arrived;  // per warp: lanes waiting at a collective
  ReadyQueue ready;
#ifdef CPT_SIM_ASAN
  const void* schedBottom = nullptr;
  size_t schedSize = 0;
  void* schedFake = nullptr;
  bool fromScheduler = false;
#endif
};
__attribute__((tls_model("initial-exec"))) thread_local Worker* tlsWorker = nullptr;
Worker& worker() {
  if (!tlsWorker) tlsWorker = new Worker;  // per thread, kept: its stacks are reused
  return *tlsWorker;
}

void prepare(Fiber& f) {
  const size_t want = settings().stack;
  if (!f.stack || f.stackSize != want) {
    if (f.stack) munmap(f.stack - kPage, f.stackSize + kPage);
    char* m = (char*)mmap(nullptr, want + kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) fault("cannot map a fiber stack");
    mprotect(m, kPage, PROT_NONE);  // overflow faults instead of corrupting the next stack
    f.stack = m + kPage;
    f.stackSize = want;
  }
#ifdef CPT_SIM_ASAN
  // A finished fiber's last frames (fiberMain, dispatch, transfer) never returned, so their
  // redzones are still poisoned where the next block's kernel frames will be: clean them.
  if (f.finishedAt) __asan_unpoison_memory_region(f.finishedAt, f.stack + f.stackSize - f.finishedAt);
  f.finishedAt = nullptr;
#endif
#if defined(__x86_64__)
  // Initial frame as cpt_sim_switch leaves it: six registers, then fiberMain as the return
  // address, entered with the stack aligned as after a call.
  uintptr_t top = ((uintptr_t)(f.stack + f.stackSize)) & ~(uintptr_t)15;
  uint64_t* s = (uint64_t*)top;
  *--s = 0;  // fiberMain's own return address: never used
  *--s = (uint64_t)(uintptr_t)&fiberMain;
  for (int i = 0; i < 6; i++) *--s = 0;
  f.sp = s;
#else
  getcontext(&f.ctx);
  f.ctx.uc_stack.ss_sp = f.stack;
  f.ctx.uc_stack.ss_size = f.stackSize;
  f.ctx.uc_link = nullptr;
  makecontext(&f.ctx, &fiberMain, 0);
#endif
  f.state = State::ready;
  f.open.clear(), f.groups.clear();
}

// From the running context (fiber `from`, or the scheduler when null) to `to` (a fiber, or the
// scheduler when null); returns when something transfers back. A finished `from` never is.
void transfer(Worker& w, Fiber* from, Fiber* to, bool finished = false) {
  w.current = to;
  tlsCoords = to ? &to->coords : nullptr;
#ifdef CPT_SIM_ASAN
  w.fromScheduler = !from;
  void** save = finished ? nullptr : from ? &from->fake : &w.schedFake;
  __sanitizer_start_switch_fiber(save, to ? to->stack : w.schedBottom, to ? to->stackSize : w.schedSize);
#else
  (void)finished;
#endif
#if defined(__x86_64__)
  cpt_sim_switch(from ? &from->sp : &w.schedSp, to ? to->sp : w.schedSp);
#else
  swapcontext(from ? &from->ctx : &w.schedCtx, to ? &to->ctx : &w.schedCtx);
#endif
#ifdef CPT_SIM_ASAN
  const void* bottom;
  size_t size;
  __sanitizer_finish_switch_fiber(from ? from->fake : w.schedFake, &bottom, &size);
  if (w.fromScheduler) w.schedBottom = bottom, w.schedSize = size;
#endif
}

// A fiber that waits or ends passes control to the first ready thread, itself included (then it
// simply goes on), or to the scheduler when none is ready or the block failed.
void dispatch(Worker& w, Fiber* self, bool finished) {
  if (!w.error.empty() || w.ready.empty()) return transfer(w, self, nullptr, finished);
  Fiber* next = &w.fibers[w.byPos[w.ready.pop()]];
  if (next != self) transfer(w, self, next, finished);
}

std::string whereAll(const std::vector<Fiber>& fs, const std::vector<int>& which);
std::string blockName(const Launch& l, dim3 b);

void fiberMain() {
  Worker& w = *tlsWorker;
  Fiber* f = w.current;
#ifdef CPT_SIM_ASAN
  const void* bottom;
  size_t size;
  __sanitizer_finish_switch_fiber(nullptr, &bottom, &size);
  if (w.fromScheduler) w.schedBottom = bottom, w.schedSize = size;
#endif
  try {
    w.body(w.ctx);
  } catch (const std::exception& e) {
    if (w.error.empty()) w.error = e.what();
  }
  f->state = State::done;
  w.done++;
  if (w.error.empty() && w.atBarrier > 0 && w.atBarrier + w.done == w.n) {
    std::vector<int> all(w.n);
    for (int k = 0; k < w.n; k++) all[k] = k;
    w.error = "__syncthreads not reached by every thread: " + whereAll(w.fibers, all);
  }
#ifdef CPT_SIM_ASAN
  // dispatch and transfer run below this frame; 16 KiB covers them with room to spare
  char* here = (char*)__builtin_frame_address(0);
  f->finishedAt = here - f->stack > 16384 ? here - 16384 : f->stack;
#endif
  dispatch(w, f, true);
  std::abort();  // a finished fiber is never resumed
}

// ---- diagnostics: "threads 0-15, 32" from a set of thread indices
std::string ranges(const std::vector<int>& xs) {
  std::string s;
  for (size_t i = 0; i < xs.size();) {
    size_t j = i;
    while (j + 1 < xs.size() && xs[j + 1] == xs[j] + 1) j++;
    if (!s.empty()) s += ", ";
    s += std::to_string(xs[i]);
    if (j > i) s += "-" + std::to_string(xs[j]);
    i = j + 1;
  }
  return s;
}
const char* opName(WarpOp op) {
  switch (op) {
    case WarpOp::shflIdx: return "__shfl_sync";
    case WarpOp::shflUp: return "__shfl_up_sync";
    case WarpOp::shflDown: return "__shfl_down_sync";
    case WarpOp::shflXor: return "__shfl_xor_sync";
    case WarpOp::ballot: return "__ballot_sync";
    case WarpOp::any: return "__any_sync";
    case WarpOp::all: return "__all_sync";
    case WarpOp::sync: return "__syncwarp";
  }
  return "?";
}
std::string site(const Fiber& f) {
  const char* base = f.file ? std::strrchr(f.file, '/') : nullptr;
  const std::string where = std::string(base ? base + 1 : f.file ? f.file : "?") + ":" + std::to_string(f.line);
  switch (f.state) {
    case State::barrier: return "__syncthreads at " + where;
    case State::warp: return std::string(opName(f.op)) + " at " + where;
    case State::done: return "exited";
    case State::ready: return "running";
  }
  return "?";
}
// Where every thread of `which` is, grouped: "threads 0-31 at __shfl_xor_sync at kernels.cuh:31; ...".
std::string whereAll(const std::vector<Fiber>& fs, const std::vector<int>& which) {
  std::map<std::string, std::vector<int>> groups;
  for (int i : which) groups[site(fs[i])].push_back(i);
  std::string s;
  for (auto& g : groups) s += (s.empty() ? "" : "; ") + std::string("threads ") + ranges(g.second) + ": " + g.first;
  return s;
}

std::string blockName(const Launch& l, dim3 b) {
  return "kernel " + std::string(l.name) + " block (" + std::to_string(b.x) + "," + std::to_string(b.y) + "," +
         std::to_string(b.z) + ")";
}

// ---- out-of-bounds faults inside a kernel
__attribute__((tls_model("initial-exec"))) thread_local volatile sig_atomic_t inKernel = 0;
std::string faultMessage(uintptr_t addr) {
  Worker* w = tlsWorker;
  if (w)
    for (const Fiber& f : w->fibers)
      if (f.stack && addr >= (uintptr_t)(f.stack - kPage) && addr < (uintptr_t)f.stack)
        return "a simulated thread overflowed its stack (raise CPT_SIM_STACK_KB)";
  const Alloc* a = mem().near(addr);
  if (!a) return "an access to " + hex((void*)addr) + ", which is not device memory";
  if (addr >= a->base + a->size)
    return "an access " + std::to_string(addr - (a->base + a->size)) + " bytes past the end of allocation #" +
           std::to_string(a->id) + " (" + std::to_string(a->size) + " bytes)";
  return "an access " + std::to_string(a->base - addr) + " bytes before the start of allocation #" + std::to_string(a->id) +
         " (" + std::to_string(a->size) + " bytes)";
}
void onSegv(int sig, siginfo_t* si, void*) {
  Worker* w = tlsWorker;
  if (inKernel && w && w->current) {
    // A fault of simulated device code: abandon the fiber, the scheduler reports it.
    w->error = "out-of-bounds: " + faultMessage((uintptr_t)si->si_addr) + " by thread " +
               std::to_string(w->current->index);
    w->current->state = State::done;
    transfer(*w, w->current, nullptr, true);
  }
  signal(sig, SIG_DFL);
  raise(sig);
}
void installFaultHandler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = onSegv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, nullptr);
    sigaction(SIGBUS, &sa, nullptr);
  });
}

// ---- launch limits of the simulated device (an H100's)
constexpr int kMaxThreads = 1024;
constexpr size_t kSmemDefault = 48 << 10, kSmemOptin = 227 << 10;
std::mutex attrMu;
std::map<const void*, size_t> dynSmemLimit;  // cudaFuncAttributeMaxDynamicSharedMemorySize

std::atomic<uint64_t> launchCount{0};


std::string maskHex(unsigned m) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%08x", m);
  return b;
}

// Whether a warp collective posted by fiber `f` can complete now; throws when it never can.
void tryWarp(Worker& w, Fiber& f, bool diagnose = false) {
  std::vector<Fiber>& fs = w.fibers;
  const int n = w.n;
  const int base = f.index / 32 * 32, lane = f.index - base, lanes = std::min(32, n - base);
  unsigned& arrived = w.arrived[f.index / 32];
  if (!diagnose) {
    arrived |= 1u << lane;
    if ((arrived & f.mask) != f.mask && (f.mask >> lane & 1u) && !(lanes < 32 && (f.mask >> lanes))) return;
  }
  auto at = [&] { return site(f); };
  if (!(f.mask >> lane & 1u))
    fault(blockName(*w.launch, w.block) + ": thread " + std::to_string(f.index) + " calls " + at() + " with mask " +
          maskHex(f.mask) + ", which leaves out its own lane " + std::to_string(lane));
  if (lanes < 32 && (f.mask >> lanes))
    fault(blockName(*w.launch, w.block) + ": " + at() + " names lanes past the end of a warp of " +
          std::to_string(lanes) + " threads");
  for (unsigned m = f.mask; m; m &= m - 1) {
    const Fiber& g = fs[base + __builtin_ctz(m)];
    if (g.state == State::ready) return;  // still on its way
    if (g.state != State::warp || g.file != f.file || g.line != f.line || g.op != f.op || g.mask != f.mask) {
      std::vector<int> group;
      for (unsigned q = f.mask; q; q &= q - 1) group.push_back(base + __builtin_ctz(q));
      if (g.state == State::warp && g.mask != f.mask && g.file == f.file && g.line == f.line)
        fault(blockName(*w.launch, w.block) + ": lanes of one warp call " + at() + " with different masks");
      fault(blockName(*w.launch, w.block) + ": warp-divergent " + at() + " (mask " + maskHex(f.mask) +
            "): " + whereAll(fs, group));
    }
  }
  // Everyone is here: compute each lane's result, then let them all go on.
  uint64_t ballot = 0;
  for (unsigned m = f.mask; m; m &= m - 1) ballot |= (fs[base + __builtin_ctz(m)].value ? 1ull : 0ull) << __builtin_ctz(m);
  for (unsigned m = f.mask; m; m &= m - 1) {
    const int l = __builtin_ctz(m);
    Fiber& g = fs[base + l];
    const int wd = g.width;
    if (wd <= 0 || wd > 32 || (wd & (wd - 1)))
      fault(blockName(*w.launch, w.block) + ": " + at() + " with width " + std::to_string(wd) +
            " (a power of two up to 32)");
    const int seg = l & ~(wd - 1), rel = l - seg;
    int src = l;
    switch (g.op) {
      case WarpOp::shflIdx: src = seg + (g.arg & (wd - 1)); break;
      case WarpOp::shflUp: src = rel >= g.arg ? l - g.arg : l; break;
      case WarpOp::shflDown: src = rel + g.arg < wd ? l + g.arg : l; break;
      case WarpOp::shflXor: src = (rel ^ g.arg) < wd ? seg + (rel ^ g.arg) : l; break;
      default: break;
    }
    switch (g.op) {
      case WarpOp::ballot: g.result = ballot; break;
      case WarpOp::any: g.result = ballot != 0; break;
      case WarpOp::all: g.result = ballot == (uint64_t)g.mask; break;
      case WarpOp::sync: g.result = 0; break;
      default:
        if (!(g.mask >> src & 1u))
          fault(blockName(*w.launch, w.block) + ": lane " + std::to_string(l) + " reads lane " + std::to_string(src) +
                " in " + at() + ", which is not in the mask");
        g.result = fs[base + src].value;
    }
  }
  for (unsigned m = f.mask; m; m &= m - 1) {
    const int i = base + __builtin_ctz(m);
    fs[i].state = State::ready, w.ready.push(w.pos[i]);
  }
  arrived &= ~f.mask;
}

void runBlock(Worker& w, const Launch& l, dim3 b, std::mt19937_64& rng) {
  const int n = (int)(l.block.x * l.block.y * l.block.z);
  if ((int)w.fibers.size() < n) w.fibers.resize(n);
  std::vector<Fiber>& fs = w.fibers;
  std::vector<int>& pos = w.pos;
  pos.resize(n);
  for (int i = 0; i < n; i++) pos[i] = i;
  if (settings().order == Order::reverse) std::reverse(pos.begin(), pos.end());
  else if (settings().order == Order::shuffled) std::shuffle(pos.begin(), pos.end(), rng);
  w.byPos.resize(n);
  for (int i = 0; i < n; i++) w.byPos[pos[i]] = i;
  w.arrived.assign((n + 31) / 32, 0u);
#ifdef CPT_SIM_ASAN
  // Frames of fibers abandoned by a failed block are still poisoned: their stacks start clean.
  if (w.abandoned)
    for (Fiber& f : fs)
      if (f.stack) __asan_unpoison_memory_region(f.stack, f.stackSize);
#endif
  ReadyQueue& ready = w.ready;
  ready.clear();
  for (int i = 0; i < n; i++) {
    Fiber& f = fs[i];
    prepare(f);
    f.index = i;
    f.coords = ThreadCoords{dim3(i % l.block.x, i / l.block.x % l.block.y, i / (l.block.x * l.block.y)), b, l.block, l.grid};
    ready.push(pos[i]);
  }
  if (l.smem) {
    w.smem.assign(l.smem + 128, 0);
    fillPoison(w.smem.data(), w.smem.size(), 0);
  }
  w.block = b;
  w.error.clear();
  w.n = n, w.atBarrier = 0, w.done = 0;
  w.abandoned = true;
  inKernel = 1;
  transfer(w, nullptr, &fs[w.byPos[ready.pop()]]);
  inKernel = 0;
  if (!w.error.empty()) fault(blockName(l, b) + ": " + w.error);
  w.abandoned = w.done != n;
  if (w.done != n) {
    // Nothing can run: a warp collective waits for a lane that is elsewhere. Name it.
    for (int k = 0; k < n; k++)
      if (fs[k].state == State::warp) tryWarp(w, fs[k], true);
    std::vector<int> all(n);
    for (int k = 0; k < n; k++) all[k] = k;
    fault(blockName(l, b) + ": deadlock (divergent synchronisation): " + whereAll(fs, all));
  }
}

}  // namespace

// ---- device side: each runs on the calling thread's fiber, and its errors unwind the kernel.
void syncthreads(const char* file, int line) {
  Worker* w = tlsWorker;
  if (!w || !w->current) fault("__syncthreads called outside a kernel");
  Fiber& f = *w->current;
  f.state = State::barrier, f.file = file, f.line = line;
  if (++w->atBarrier + w->done == w->n) {
    std::vector<Fiber>& fs = w->fibers;
    auto all = [&] {
      std::vector<int> v(w->n);
      for (int k = 0; k < w->n; k++) v[k] = k;
      return whereAll(fs, v);
    };
    if (w->done > 0) fault("__syncthreads not reached by every thread: " + all());
    for (int k = 1; k < w->n; k++)
      if (fs[k].file != fs[0].file || fs[k].line != fs[0].line) fault("threads wait at different __syncthreads: " + all());
    for (int k = 0; k < w->n; k++) fs[k].state = State::ready, w->ready.push(w->pos[k]);
    w->atBarrier = 0;
  }
  dispatch(*w, &f, false);
}

uint64_t warpCollective(const char* file, int line, WarpOp op, unsigned mask, uint64_t value, int arg, int width) {
  Worker* w = tlsWorker;
  if (!w || !w->current) fault(std::string(opName(op)) + " called outside a kernel");
  Fiber& f = *w->current;
  f.state = State::warp, f.file = file, f.line = line, f.op = op, f.mask = mask, f.value = value, f.arg = arg,
  f.width = width;
  tryWarp(*w, f);
  dispatch(*w, &f, false);
  return f.result;
}

float* warpTiles(int warp) {
  Worker* w = tlsWorker;
  if (!w || !w->current) fault("mma.sync or ldmatrix used outside a kernel");
  if (w->warpTiles.empty()) w->warpTiles.assign(32 * 3 * 256, 0.f);
  return w->warpTiles.data() + (size_t)warp * 3 * 256;
}

// cp.async: a copy lands at one of the two extremes a GPU allows. Late (the default): only when
// the thread's cp.async.wait_group releases its group, so a read before the wait (or before the
// barrier that publishes the copies) sees what was there before. Early (CPT_SIM_CP_ASYNC=early):
// as it is issued, so a copy into a tile that other warps still read corrupts what they read.
Fiber& asyncFiber(const char* what) {
  Worker* w = tlsWorker;
  if (!w || !w->current) fault(std::string(what) + " called outside a kernel");
  return *w->current;
}
void cpAsync(void* dst, const void* src, size_t n) {
  Fiber& f = asyncFiber("cp.async");
  if (n != 4 && n != 8 && n != 16) throw std::runtime_error("cp.async: copies 4, 8 or 16 bytes");
  if ((uintptr_t)dst % n || (uintptr_t)src % n) throw std::runtime_error("cp.async: an address is not aligned to the copy's size");
  if (!inSharedMemory(dst, n)) throw std::runtime_error("cp.async: the destination is not in the block's shared memory");
  if (settings().asyncEarly) std::memcpy(dst, src, n);
  else f.open.push_back({dst, src, n});
}
void cpAsyncCommit() {
  Fiber& f = asyncFiber("cp.async.commit_group");
  f.groups.push_back(std::move(f.open));
  f.open.clear();
}
void cpAsyncWait(int pending) {
  Fiber& f = asyncFiber("cp.async.wait_group");
  while ((int)f.groups.size() > pending) {
    for (const Fiber::Copy& c : f.groups.front()) std::memcpy(c.dst, c.src, c.n);
    f.groups.pop_front();
  }
}

bool inSharedMemory(const void* p, size_t n) {
  Worker* w = tlsWorker;
  if (!w || !w->current) fault("shared memory used outside a kernel");
  const uintptr_t a = (uintptr_t)p, b = (uintptr_t)dynamicSmem(), e = (uintptr_t)w->smem.data() + w->smem.size();
  return a >= b && a + n <= e;
}

void* dynamicSmem() {
  Worker* w = tlsWorker;
  if (!w || !w->current) fault("dynamic shared memory used outside a kernel");
  return (void*)(((uintptr_t)w->smem.data() + 127) & ~(uintptr_t)127);
}

// ---- launches
bool configure(const Launch& l) {
  const dim3 g = l.grid, b = l.block;
  const unsigned long long threads = (unsigned long long)b.x * b.y * b.z;
  if (threads == 0 || threads > kMaxThreads || b.x > 1024 || b.y > 1024 || b.z > 64) {
    fail(cudaErrorInvalidConfiguration, std::string("launch of ") + l.name + " with block (" + std::to_string(b.x) + "," +
                                            std::to_string(b.y) + "," + std::to_string(b.z) + ")");
    return false;
  }
  if (g.x == 0 || g.y == 0 || g.z == 0 || g.x > 2147483647u || g.y > 65535 || g.z > 65535) {
    fail(cudaErrorInvalidConfiguration, std::string("launch of ") + l.name + " with grid (" + std::to_string(g.x) + "," +
                                            std::to_string(g.y) + "," + std::to_string(g.z) + ")");
    return false;
  }
  size_t limit = kSmemDefault;
  {
    std::lock_guard<std::mutex> lk(attrMu);
    auto it = dynSmemLimit.find(l.func);
    if (it != dynSmemLimit.end()) limit = it->second;
  }
  if (l.smem > limit) {
    fail(cudaErrorInvalidValue, std::string("launch of ") + l.name + " with " + std::to_string(l.smem) +
                                    " bytes of dynamic shared memory; the limit is " + std::to_string(limit) +
                                    (limit == kSmemDefault ? " without cudaFuncAttributeMaxDynamicSharedMemorySize" : ""));
    return false;
  }
  return true;
}

void checkArg(const Launch& l, int index, const void* p) {
  if (!p) return;
  std::lock_guard<std::mutex> lk(mem().mu);
  if (!mem().find(p))
    fault("kernel " + std::string(l.name) + ": argument " + std::to_string(index + 1) + " (" + hex(p) +
          ") is not a device pointer" + (mem().near((uintptr_t)p) ? " (it points outside its allocation)" : " (host memory?)"));
}

void run(const Launch& l, void (*body)(void*), void* ctx) {
  launchCount++;
  if (planMode) return;
  installFaultHandler();
  Worker& w = worker();
  if (w.current) fault("kernel " + std::string(l.name) + " launched from inside a kernel");
  w.launch = &l, w.body = body, w.ctx = ctx;
  w.mmaLanes = w.ldmatrixBytes = w.wavefronts = 0;
  std::mt19937_64 rng(settings().seed * 0x9E3779B97F4A7C15ull + launchCount);
  const size_t nb = (size_t)l.grid.x * l.grid.y * l.grid.z;
  std::vector<size_t> order(nb);
  for (size_t i = 0; i < nb; i++) order[i] = i;
  if (settings().order == Order::reverse) std::reverse(order.begin(), order.end());
  else if (settings().order == Order::shuffled) std::shuffle(order.begin(), order.end(), rng);
  for (size_t k : order) {
    const dim3 b((unsigned)(k % l.grid.x), (unsigned)(k / l.grid.x % l.grid.y), (unsigned)(k / ((size_t)l.grid.x * l.grid.y)));
    runBlock(w, l, b, rng);
  }
  std::lock_guard<std::mutex> lk(mem().mu);
  for (auto& kv : mem().byBase) {
    const std::string bad = checkCanaries(kv.second);
    if (!bad.empty()) fault("kernel " + std::string(l.name) + ": " + bad);
  }
}

std::string deviceRange(const void* p, size_t bytes) {
  std::lock_guard<std::mutex> lk(mem().mu);
  if (mem().find(p, bytes)) return "";
  const Alloc* a = mem().find(p);
  if (!a) return hex(p) + " is not device memory";
  return "[" + hex(p) + ", +" + std::to_string(bytes) + ") runs " + std::to_string((uintptr_t)p + bytes - (a->base + a->size)) +
         " bytes past the end of allocation #" + std::to_string(a->id) + " (" + std::to_string(a->size) + " bytes)";
}
bool isDevice(const void* p) {
  std::lock_guard<std::mutex> lk(mem().mu);
  return mem().find(p) != nullptr;
}
bool planning() { return planMode; }

// ---- the launch trace (cpt_sim_trace): what the performance model (scripts/model-cuda.ts) costs.
namespace {
std::mutex traceMu;
FILE* traceFile = nullptr;
}  // namespace
bool tracing() {
  static const bool fromEnv = [] {  // $CPT_SIM_TRACE: a trace from the start, without the C API
    const char* p = std::getenv("CPT_SIM_TRACE");
    if (p && *p && cpt_sim_trace(p)) {
      std::fprintf(stderr, "cuda-sim: CPT_SIM_TRACE=%s: the file cannot be opened\n", p);
      std::exit(2);
    }
    return true;
  }();
  (void)fromEnv;
  return traceFile != nullptr;
}
void trace(const std::string& json) {
  std::lock_guard<std::mutex> lk(traceMu);
  if (traceFile) std::fprintf(traceFile, "%s\n", json.c_str());
}
void countWork(uint64_t mmaLanes, uint64_t ldmatrixBytes, uint64_t wavefronts) {
  Worker* w = tlsWorker;
  if (!w || !w->current) fault("mma.sync or ldmatrix used outside a kernel");
  w->mmaLanes += mmaLanes, w->ldmatrixBytes += ldmatrixBytes, w->wavefronts += wavefronts;
}
// `"key":"name","grid":[..],"block":[..],"args":[..]`, the launch as the model reads it.
std::string launchJson(const char* key, const Launch& l, const double* args, int n) {
  std::string s = std::string("\"") + key + "\":\"" + l.name + "\",\"grid\":[" + std::to_string(l.grid.x) + "," +
                  std::to_string(l.grid.y) + "," + std::to_string(l.grid.z) + "],\"block\":[" + std::to_string(l.block.x) +
                  "," + std::to_string(l.block.y) + "," + std::to_string(l.block.z) + "],\"args\":[";
  for (int i = 0; i < n; i++) {
    char b[32];
    if (std::isnan(args[i])) std::snprintf(b, sizeof b, "null");
    else std::snprintf(b, sizeof b, "%.17g", args[i]);
    s += (i ? "," : "") + std::string(b);
  }
  return s + "]";
}
void traceLaunch(const Launch& l, const double* args, int n) { trace("{" + launchJson("kernel", l, args, n) + "}"); }
void traceWork(const Launch& l, const double* args, int n) {
  const Worker& w = worker();
  if (!planMode && (w.mmaLanes || w.ldmatrixBytes))
    trace("{" + launchJson("counted", l, args, n) + ",\"mma\":" + std::to_string(w.mmaLanes / 32) + ",\"ldmatrix\":" +
          std::to_string(w.ldmatrixBytes) + ",\"wavefronts\":" + std::to_string(w.wavefronts) + "}");
}

// ---- stream capture: one capture at a time (the engine captures on the thread that launches).
namespace {
struct Capture {
  cudaStream_t stream = nullptr;  // capturing, or null
  std::vector<std::function<void()>> work;
  cudaError_t broken = cudaSuccess;  // what invalidated it
};
Capture capture;
}  // namespace

// Invalidates the capture, as the real runtime does for an unsafe call during one.
cudaError_t breakCapture(cudaError_t e, const std::string& why) {
  if (capture.broken == cudaSuccess) capture.broken = e;
  return fail(e, why + " while a stream is capturing");
}
// What a call that waits for the device (or allocates) does during a capture: an error.
cudaError_t noCapture(const char* call) {
  return capture.stream ? breakCapture(cudaErrorStreamCaptureUnsupported, std::string(call) + " (it synchronises)")
                        : cudaSuccess;
}
Gate gate(cudaStream_t s, const char* what) {
  if (!capture.stream) return Gate::run;
  if (s != capture.stream) {
    breakCapture(cudaErrorStreamCaptureImplicit,
                 std::string(what) + " on " + (s ? "another stream" : "the legacy default stream"));
    return Gate::refused;
  }
  if (capture.broken != cudaSuccess) {
    fail(cudaErrorStreamCaptureInvalidated, std::string(what) + " on a capture already invalidated");
    return Gate::refused;
  }
  return Gate::record;
}
void record(std::function<void()> work) { capture.work.push_back(std::move(work)); }

}  // namespace cpt_sim

using namespace cpt_sim;

struct CUstream_st {
  int unused;
};
struct CUgraph_st {
  std::vector<std::function<void()>> work;
};
struct CUgraphExec_st {
  std::vector<std::function<void()>> work;
};
namespace {
long long graphLaunches = 0;
}  // namespace
cudaError_t cudaStreamCreate(cudaStream_t* s) {
  *s = new CUstream_st{};
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  if (s && s == capture.stream) return fail(cudaErrorStreamCaptureUnsupported, "cudaStreamDestroy of a capturing stream");
  delete s;
  return cudaSuccess;
}
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode) {
  if (!s) return fail(cudaErrorStreamCaptureUnsupported, "the legacy default stream cannot be captured");
  if (capture.stream) return fail(cudaErrorStreamCaptureUnsupported, "another capture is under way");
  capture = Capture{s, {}, cudaSuccess};
  return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* graph) {
  if (!capture.stream || s != capture.stream) return fail(cudaErrorInvalidValue, "cudaStreamEndCapture of a stream that is not capturing");
  const cudaError_t broken = capture.broken;
  std::vector<std::function<void()>> work = std::move(capture.work);
  capture = Capture{};
  *graph = nullptr;
  if (broken != cudaSuccess) return fail(cudaErrorStreamCaptureInvalidated, "the capture was invalidated");
  *graph = new CUgraph_st{std::move(work)};
  return cudaSuccess;
}
cudaError_t cudaGraphInstantiateWithFlags(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  if (!graph) return fail(cudaErrorInvalidValue, "cudaGraphInstantiateWithFlags of no graph");
  *exec = new CUgraphExec_st{graph->work};
  return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s) {
  if (!exec) return fail(cudaErrorInvalidValue, "cudaGraphLaunch of no graph");
  if (gate(s, "cudaGraphLaunch") != Gate::run) return lastError;
  for (auto& w : exec->work) w();
  graphLaunches++;
  return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;
  return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}

// ---- the runtime API
cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) {
  return device == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice, "the simulator has one device, 0");
}
cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device) {
  if (device != 0) return fail(cudaErrorInvalidDevice, "the simulator has one device, 0");
  std::memset(p, 0, sizeof *p);
  std::snprintf(p->name, sizeof p->name, "cuda-sim (SIMT simulator on the CPU, H100 limits)");
  p->totalGlobalMem = mem().limit;
  p->sharedMemPerBlock = kSmemDefault;
  p->sharedMemPerBlockOptin = kSmemOptin;
  p->warpSize = 32;
  p->maxThreadsPerBlock = kMaxThreads;
  p->maxThreadsDim[0] = 1024, p->maxThreadsDim[1] = 1024, p->maxThreadsDim[2] = 64;
  p->maxGridSize[0] = 2147483647, p->maxGridSize[1] = 65535, p->maxGridSize[2] = 65535;
  p->major = 9, p->minor = 0;
  p->multiProcessorCount = 132;
  p->l2CacheSize = 50 << 20;
  return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int* v) {
  *v = 0;  // no driver: a simulation
  return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int* v) {
  *v = 0;
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** p, size_t bytes) {
  if (cudaError_t e = noCapture("cudaMalloc")) return e;
  *p = nullptr;
  Memory& m = mem();
  std::lock_guard<std::mutex> lk(m.mu);
  const size_t charge = roundUp(std::max<size_t>(bytes, 1), 512);
  if (m.current + charge > m.limit)
    return fail(cudaErrorMemoryAllocation, std::to_string(bytes >> 20) + " MiB asked for, " +
                                               std::to_string((m.limit - m.current) >> 20) + " MiB free of " +
                                               std::to_string(m.limit >> 20) + " (CPT_SIM_MEM_MB)");
  const bool plan = planMode;
  const size_t dataBytes = roundUp(std::max<size_t>(bytes, 1), kAlign);
  const size_t inner = roundUp(dataBytes, kPage);
  const size_t regionSize = inner + 2 * kPage;
  char* region = (char*)mmap(nullptr, regionSize, plan ? PROT_NONE : PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (region == MAP_FAILED) return fail(cudaErrorMemoryAllocation, "the host could not map " + std::to_string(regionSize) + " bytes");
  char* data = region + kPage + inner - dataBytes;
  Alloc a{(uintptr_t)data, bytes, m.nextId++, region, regionSize, plan};
  if (!plan) {
    mprotect(region, kPage, PROT_NONE);
    mprotect(region + regionSize - kPage, kPage, PROT_NONE);
    std::memset(region + kPage, kCanary, inner);
    fillPoison(data, bytes, a.id);
  }
  m.byBase[a.base] = a;
  m.current += charge;
  m.peak = std::max(m.peak, m.current);
  *p = data;
  return cudaSuccess;
}

cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  if (cudaError_t e = noCapture("cudaFree")) return e;
  Memory& m = mem();
  std::lock_guard<std::mutex> lk(m.mu);
  auto it = m.byBase.find((uintptr_t)p);
  if (it == m.byBase.end()) return fail(cudaErrorInvalidDevicePointer, "cudaFree of " + hex(p) + ", which cudaMalloc did not return");
  const std::string bad = checkCanaries(it->second);
  if (!bad.empty()) fault("found at cudaFree: " + bad);
  munmap(it->second.region, it->second.regionSize);
  m.current -= roundUp(std::max<size_t>(it->second.size, 1), 512);
  m.byBase.erase(it);
  return cudaSuccess;
}

namespace {
// Checks one side of a copy: device memory must be [p, p + n) inside one allocation; host memory
// must not be device memory.
cudaError_t side(const char* what, const void* p, size_t n, bool device, const char* call, bool* plan) {
  const Alloc* a = mem().find(p, n);
  if (device) {
    if (!a) {
      const Alloc* any = mem().find(p);
      return fail(cudaErrorInvalidValue,
                  std::string(call) + ": the " + what + " " + hex(p) +
                      (any ? " runs " + std::to_string((uintptr_t)p + n - (any->base + any->size)) +
                                 " bytes past the end of allocation #" + std::to_string(any->id) + " (" +
                                 std::to_string(any->size) + " bytes)"
                           : " is not device memory"));
    }
    *plan |= a->plan;
  } else if (mem().find(p)) {
    return fail(cudaErrorInvalidValue, std::string(call) + ": the " + what + " is device memory where host memory was named");
  }
  return cudaSuccess;
}
}  // namespace

namespace {
// Page-locked host allocations (cudaMallocHost) by base and size.
std::map<uintptr_t, size_t>& pinned() {
  static auto* m = new std::map<uintptr_t, size_t>;
  return *m;
}
bool isPinned(const void* p, size_t n) {
  std::lock_guard<std::mutex> lk(mem().mu);
  auto it = pinned().upper_bound((uintptr_t)p);
  return it != pinned().begin() && (uintptr_t)p + n <= (--it)->first + it->second;
}
// A copy, checked; `async` when it is queued without the host waiting (traced for the model);
// `deferred`: recorded into the capture, done when the graph runs.
cudaError_t copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, bool async, bool deferred) {
  if (bytes == 0) return cudaSuccess;
  bool plan = false;
  {
    std::lock_guard<std::mutex> lk(mem().mu);
    if (kind == cudaMemcpyDefault)
      kind = (cudaMemcpyKind)((mem().find(src) ? 2 : 0) | (mem().find(dst) ? 1 : 0));
    if (kind < 0 || kind > 3) return fail(cudaErrorInvalidMemcpyDirection, "cudaMemcpy kind");
    const bool dDev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    const bool sDev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if (cudaError_t e = side("destination", dst, bytes, dDev, "cudaMemcpy", &plan)) return e;
    if (cudaError_t e = side("source", src, bytes, sDev, "cudaMemcpy", &plan)) return e;
  }
  if (tracing())
    trace(std::string("{\"copy\":\"") + (kind == cudaMemcpyHostToDevice ? "h2d" : kind == cudaMemcpyDeviceToHost ? "d2h" : kind == cudaMemcpyDeviceToDevice ? "d2d" : "h2h") +
          "\",\"bytes\":" + std::to_string(bytes) + (async ? ",\"async\":1" : "") + "}");
  if (plan) return cudaSuccess;  // plan allocations have no pages
  if (deferred) record([=] { std::memmove(dst, src, bytes); });
  else std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t fill(void* p, int value, size_t bytes, bool deferred) {
  if (bytes == 0) return cudaSuccess;
  bool plan = false;
  {
    std::lock_guard<std::mutex> lk(mem().mu);
    if (cudaError_t e = side("destination", p, bytes, true, "cudaMemset", &plan)) return e;
  }
  if (tracing()) trace("{\"memset\":" + std::to_string(bytes) + "}");
  if (plan) return cudaSuccess;
  if (deferred) record([=] { std::memset(p, value, bytes); });
  else std::memset(p, value, bytes);
  return cudaSuccess;
}
}  // namespace

cudaError_t cudaMallocHost(void** p, size_t bytes) {
  *p = std::aligned_alloc(kPage, roundUp(std::max<size_t>(bytes, 1), kPage));
  if (!*p) return fail(cudaErrorMemoryAllocation, "cudaMallocHost of " + std::to_string(bytes) + " bytes");
  std::lock_guard<std::mutex> lk(mem().mu);
  pinned()[(uintptr_t)*p] = bytes;
  return cudaSuccess;
}
cudaError_t cudaFreeHost(void* p) {
  if (!p) return cudaSuccess;
  {
    std::lock_guard<std::mutex> lk(mem().mu);
    if (!pinned().erase((uintptr_t)p))
      return fail(cudaErrorInvalidValue, "cudaFreeHost of " + hex(p) + ", which cudaMallocHost did not return");
  }
  std::free(p);
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (cudaError_t e = noCapture("cudaMemcpy")) return e;
  return copy(dst, src, bytes, kind, false, false);
}
// A real asynchronous copy between the device and pageable host memory is staged while the host
// waits; only page-locked memory makes it asynchronous. Here every copy is done when it returns.
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s) {
  const Gate g = gate(s, "cudaMemcpyAsync");
  if (g == Gate::refused) return lastError;
  const bool hostSrc = kind == cudaMemcpyHostToDevice, hostDst = kind == cudaMemcpyDeviceToHost;
  return copy(dst, src, bytes, kind, kind == cudaMemcpyDeviceToDevice || (hostSrc && isPinned(src, bytes)) || (hostDst && isPinned(dst, bytes)),
              g == Gate::record);
}

cudaError_t cudaMemset(void* p, int value, size_t bytes) {
  if (cudaError_t e = noCapture("cudaMemset")) return e;
  return fill(p, value, bytes, false);
}
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t s) {
  const Gate g = gate(s, "cudaMemsetAsync");
  return g == Gate::refused ? lastError : fill(p, value, bytes, g == Gate::record);
}
cudaError_t cudaMemGetInfo(size_t* freeBytes, size_t* totalBytes) {
  std::lock_guard<std::mutex> lk(mem().mu);
  *freeBytes = mem().limit - mem().current;
  *totalBytes = mem().limit;
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize(void) { return noCapture("cudaDeviceSynchronize"); }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return noCapture("cudaStreamSynchronize"); }
// Launches run to completion before they return, so an event is the host clock when recorded.
struct CUevent_st {
  std::chrono::steady_clock::time_point t{};
};
cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = new CUevent_st;
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  const Gate g = gate(s, "cudaEventRecord");
  if (g == Gate::record) record([e] { e->t = std::chrono::steady_clock::now(); });
  if (g == Gate::run) e->t = std::chrono::steady_clock::now();
  return g == Gate::refused ? lastError : cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) { return noCapture("cudaEventSynchronize"); }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
  *ms = std::chrono::duration<float, std::milli>(b->t - a->t).count();
  return cudaSuccess;
}
cudaError_t cudaGetLastError(void) {
  const cudaError_t e = lastError;
  lastError = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError(void) { return lastError; }

namespace {
// Each modelled error: its name and the real runtime's wording.
struct ErrorText {
  cudaError_t code;
  const char* name;
  const char* text;
};
constexpr ErrorText kErrors[] = {
    {cudaSuccess, "cudaSuccess", "no error"},
    {cudaErrorInvalidValue, "cudaErrorInvalidValue", "invalid argument"},
    {cudaErrorMemoryAllocation, "cudaErrorMemoryAllocation", "out of memory"},
    {cudaErrorInitializationError, "cudaErrorInitializationError", "initialization error"},
    {cudaErrorInvalidConfiguration, "cudaErrorInvalidConfiguration", "invalid configuration argument"},
    {cudaErrorInvalidDevicePointer, "cudaErrorInvalidDevicePointer", "invalid device pointer"},
    {cudaErrorInvalidMemcpyDirection, "cudaErrorInvalidMemcpyDirection", "invalid copy direction for memcpy"},
    {cudaErrorInsufficientDriver, "cudaErrorInsufficientDriver", "CUDA driver version is insufficient for CUDA runtime version"},
    {cudaErrorNoDevice, "cudaErrorNoDevice", "no CUDA-capable device is detected"},
    {cudaErrorInvalidDevice, "cudaErrorInvalidDevice", "invalid device ordinal"},
    {cudaErrorIllegalAddress, "cudaErrorIllegalAddress", "an illegal memory access was encountered"},
    {cudaErrorLaunchOutOfResources, "cudaErrorLaunchOutOfResources", "too many resources requested for launch"},
    {cudaErrorInvalidDeviceFunction, "cudaErrorInvalidDeviceFunction", "invalid device function"},
    {cudaErrorStreamCaptureUnsupported, "cudaErrorStreamCaptureUnsupported", "operation not permitted when stream is capturing"},
    {cudaErrorStreamCaptureInvalidated, "cudaErrorStreamCaptureInvalidated", "operation failed due to a previous error during capture"},
    {cudaErrorStreamCaptureImplicit, "cudaErrorStreamCaptureImplicit", "operation would make the legacy stream depend on a capturing blocking stream"},
};
const ErrorText* errorText(cudaError_t e) {
  for (const ErrorText& t : kErrors)
    if (t.code == e) return &t;
  return nullptr;
}
}  // namespace

const char* cudaGetErrorName(cudaError_t e) {
  const ErrorText* t = errorText(e);
  return t ? t->name : "cudaErrorUnknown";
}

// The real runtime's wording, then what the simulator saw when it set this error.
const char* cudaGetErrorString(cudaError_t e) {
  const ErrorText* t = errorText(e);
  const char* base = t ? t->text : "unknown error";
  static thread_local std::string s;
  s = lastDetail.empty() ? base : std::string(base) + " [cuda-sim: " + lastDetail + "]";
  lastDetail.clear();
  return s.c_str();
}

cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value) {
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) return fail(cudaErrorInvalidValue, "attribute not modelled");
  if (value < 0 || (size_t)value > kSmemOptin)
    return fail(cudaErrorInvalidValue, "dynamic shared memory of " + std::to_string(value) + " bytes; the opt-in limit is " +
                                           std::to_string(kSmemOptin));
  std::lock_guard<std::mutex> lk(attrMu);
  dynSmemLimit[func] = std::max<size_t>(kSmemDefault, (size_t)value);
  return cudaSuccess;
}

// ---- the simulator's own controls
extern "C" {
void cpt_sim_set_plan(int on) { planMode = on != 0; }
// Starts writing the launch trace to `path` (JSON lines), or stops it (null); 0, or -1 when the file cannot be opened.
int cpt_sim_trace(const char* path) {
  std::lock_guard<std::mutex> lk(traceMu);
  if (traceFile) std::fclose(traceFile), traceFile = nullptr;
  if (path && !(traceFile = std::fopen(path, "w"))) return -1;
  return 0;
}
int cpt_sim_plan(void) { return planMode ? 1 : 0; }
long long cpt_sim_graph_launches(void) { return graphLaunches; }
void cpt_sim_memory(size_t* current, size_t* peak, size_t* limit) {
  std::lock_guard<std::mutex> lk(mem().mu);
  if (current) *current = mem().current;
  if (peak) *peak = mem().peak;
  if (limit) *limit = mem().limit;
}
void cpt_sim_set_mem_limit(size_t bytes) {
  std::lock_guard<std::mutex> lk(mem().mu);
  mem().limit = bytes;
}
void cpt_sim_reset_peak(void) {
  std::lock_guard<std::mutex> lk(mem().mu);
  mem().peak = mem().current;
}
}
