/** Where a CUDA toolkit may be, in order (scripts/cuda-roots.mjs). */
export function cudaRoots(): string[];
