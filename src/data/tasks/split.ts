import { createHash } from 'node:crypto';

/**
 * A stable number in [0, 1) from a string: the first 32 bits of its SHA-1. Used to cut train/test
 * splits where the source has none, by the example *text* so that duplicate texts (FPB repeats,
 * FiQA headlines with several targets) always land on the same side and never leak across.
 */
export function stableFraction(key: string): number {
  return createHash('sha1').update(key, 'utf8').digest().readUInt32BE(0) / 2 ** 32;
}

/** Test when stableFraction(key) < testFraction, else train. */
export function splitOf(key: string, testFraction: number): 'train' | 'test' {
  return stableFraction(key) < testFraction ? 'test' : 'train';
}

/** Distinct values in first-seen order. */
export function distinct(xs: Iterable<string>): string[] {
  return [...new Set(xs)];
}
