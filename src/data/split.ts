/** Held-out split by a stable hash of the document id: independent of shard and record order. */

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const MASK = 0xffffffffffffffffn;
const encoder = new TextEncoder();

/** 64-bit FNV-1a of the UTF-8 bytes of `s`. */
export function fnv1a64(s: string): bigint {
  let h = FNV_OFFSET;
  for (const b of encoder.encode(s)) h = ((h ^ BigInt(b)) * FNV_PRIME) & MASK;
  return h;
}

/** MurmurHash3's 64-bit finalizer: FNV-1a alone leaves the top bits of short, similar ids correlated. */
export function fmix64(h: bigint): bigint {
  h ^= h >> 33n;
  h = (h * 0xff51afd7ed558ccdn) & MASK;
  h ^= h >> 33n;
  h = (h * 0xc4ceb9fe1a85ec53n) & MASK;
  return h ^ (h >> 33n);
}

/** The id's hash mapped to [0, 1): top 53 bits of fmix64(FNV-1a 64(UTF-8 id)). */
export function hashUnit(id: string): number {
  return Number(fmix64(fnv1a64(id)) >> 11n) / 2 ** 53;
}

/** Default Fin-test fraction, as in the paper (0.1% of the domain documents). */
export const DEFAULT_HELD_OUT_FRACTION = 0.001;

export function isHeldOut(id: string, fraction: number = DEFAULT_HELD_OUT_FRACTION): boolean {
  return hashUnit(id) < fraction;
}
