/* cuda-sim's own controls, beside the CUDA API it stands in for (README.md beside this file).
 * A library built on the simulator exports these; a real CUDA build does not, which is how the
 * Node addon tells them apart. */
#ifndef CPT_SIM_H
#define CPT_SIM_H
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Plan mode: allocations reserve address space only (no page is touched) and nothing executes:
 * kernels, copies, memsets and products are checked and skipped. What remains is the engine's
 * own sequence of allocations, so the peak below is its real footprint for a shape. Set it
 * before the engine allocates anything. Also $CPT_SIM_PLAN=1. */
void cpt_sim_set_plan(int on);
int cpt_sim_plan(void);
/* Device memory: what is allocated now, the most ever allocated at once, and the cap
 * ($CPT_SIM_MEM_MB, default 81920: an 80 GiB GPU) past which cudaMalloc fails as on a GPU. */
void cpt_sim_memory(size_t* current, size_t* peak, size_t* limit);
void cpt_sim_set_mem_limit(size_t bytes);
void cpt_sim_reset_peak(void);
/* The launch trace: from now on every kernel launch (name, grid, block, arguments as numbers),
 * cuBLASLt product (m, n, k, batch, bytes per element of A, B, C read and D) and copy is written
 * to `path` as one JSON object per line, in plan mode too; null stops it. 0, or -1 when the file
 * cannot be opened. What scripts/model-cuda.ts costs on a roofline. */
int cpt_sim_trace(const char* path);
/* How many CUDA graph launches ran so far (the checks ask whether a step was replayed). */
long long cpt_sim_graph_launches(void);

#ifdef __cplusplus
}
#endif
#endif
