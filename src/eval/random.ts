import { createHash } from 'node:crypto';

/** 32-bit seed from a string (few-shot sampling keyed by seed and document id). */
export function stableHash32(s: string): number {
  return createHash('sha1').update(s, 'utf8').digest().readUInt32BE(0);
}
