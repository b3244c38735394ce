/**
 * Tensor comparison for golden and parity tests: on failure, names the tensor and prints the
 * max difference, where it is, and the first values of both sides (llm.c style).
 */
export interface CloseReport {
  ok: boolean;
  maxDiff: number;
  at: number;
  message: string;
}

/** |a - b| <= atol + rtol * scale, where scale is max|b| when `relativeToMax`, else |b[i]|. */
export function compareTensors(
  name: string,
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: { atol?: number; rtol?: number; relativeToMax?: boolean },
): CloseReport {
  if (actual.length !== expected.length) {
    return { ok: false, maxDiff: Infinity, at: -1, message: `${name}: length ${actual.length} != expected ${expected.length}` };
  }
  const atol = tol.atol ?? 0, rtol = tol.rtol ?? 0;
  let maxAbs = 0;
  for (let i = 0; i < expected.length; i++) maxAbs = Math.max(maxAbs, Math.abs(expected[i]));
  let maxDiff = 0, at = 0, ok = true;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (!(d <= atol + rtol * (tol.relativeToMax ? maxAbs : Math.abs(expected[i])))) ok = false;
    if (d > maxDiff || Number.isNaN(d)) { maxDiff = d; at = i; }
  }
  const first = (a: ArrayLike<number>) => Array.from({ length: Math.min(5, a.length) }, (_, i) => a[i].toFixed(6)).join(', ');
  const message =
    `${name}: max |diff| ${maxDiff.toExponential(3)} at [${at}] (max |expected| ${maxAbs.toExponential(3)}, ` +
    `atol ${atol}, rtol ${rtol}${tol.relativeToMax ? ' of max' : ''})\n  actual   ${first(actual)}\n  expected ${first(expected)}`;
  return { ok, maxDiff, at, message };
}

/** Throws with the report's message if the tensors differ beyond tolerance. */
export function expectClose(
  name: string,
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: { atol?: number; rtol?: number; relativeToMax?: boolean },
): void {
  const r = compareTensors(name, actual, expected, tol);
  if (!r.ok) throw new Error(r.message);
}
