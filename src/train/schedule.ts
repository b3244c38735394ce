/**
 * Learning-rate schedule: linear warmup to the peak, then cosine decay to `minLr` (or constant).
 * Pure and indexed by the 0-based optimizer step, so a resumed run recomputes the same value.
 */
export interface Schedule {
  lr: number;
  minLr: number;
  warmupSteps: number;
  totalSteps: number;
  kind: 'cosine' | 'constant';
}

/** Warmup steps for a fraction of the run (Pythia: 1%); at least 1 when the fraction is > 0. */
export function warmupSteps(fraction: number, totalSteps: number): number {
  if (fraction <= 0) return 0;
  return Math.min(totalSteps, Math.max(1, Math.round(fraction * totalSteps)));
}

/** Learning rate for optimizer step `step` (0-based): warmup reaches the peak on its last step. */
export function lrAt(step: number, s: Schedule): number {
  if (step < s.warmupSteps) return (s.lr * (step + 1)) / s.warmupSteps;
  if (s.kind === 'constant') return s.lr;
  const span = s.totalSteps - s.warmupSteps;
  if (span <= 1) return s.lr;
  // Progress 0 at the first post-warmup step, 1 at the last step: the run ends exactly at minLr.
  const p = Math.min(1, (step - s.warmupSteps) / (span - 1));
  return s.minLr + 0.5 * (s.lr - s.minLr) * (1 + Math.cos(Math.PI * p));
}
