/**
 * Deterministic stand-ins for testing the scoring machinery (batching, padding, truncation,
 * prompt → tokens): a word-level tokenizer whose tokens carry their leading space like GPT-2 BPE,
 * and an Engine whose next-token distribution is a fixed function of the whole prefix (causal).
 */
import type { Engine } from '../../src/engine/engine.js';
import { ENGINE_OPS, type EngineOp } from '../../src/engine/ops.js';
import type { NeoXConfig } from '../../src/model/config.js';
import { presetConfig } from '../../src/model/presets.js';
import type { EvalTokenizer } from '../../src/eval/loglik.js';

export const VOCAB = 97;

function fnv(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return h;
}

/** Pieces: optional whitespace run + a word, or a punctuation char, or trailing whitespace. */
export function pieces(text: string): string[] {
  return text.match(/\s*[A-Za-z0-9]+|\s*[^\sA-Za-z0-9]|\s+/g) ?? [];
}

export const wordTokenizer: EvalTokenizer & { idOf(piece: string): number } = {
  eosId: 0,
  idOf: (p) => 1 + (fnv(p) % (VOCAB - 1)),
  encode(text: string): Int32Array {
    return Int32Array.from(pieces(text), (p) => 1 + (fnv(p) % (VOCAB - 1)));
  },
};

export function fakeConfig(maxLen = 2048): NeoXConfig {
  return { ...presetConfig('pythia-14m'), vocab_size: VOCAB, max_position_embeddings: maxLen };
}

/**
 * Logits at position t depend on ids[0..t] only. `favour`, when set, adds a large bonus to one
 * token id everywhere (an engine that always "answers" that token).
 */
export function fakeEngine(opts: { maxLen?: number; favour?: number } = {}): Engine & { calls: number[][] } {
  const config = fakeConfig(opts.maxLen);
  const calls: number[][] = [];
  const logits = (ids: Int32Array, batch: number, seq: number): Float32Array => {
    const out = new Float32Array(batch * seq * VOCAB);
    for (let b = 0; b < batch; b++) {
      let h = 17;
      for (let t = 0; t < seq; t++) {
        h = (Math.imul(h, 31) + ids[b * seq + t]! + 1) >>> 0;
        for (let v = 0; v < VOCAB; v++) {
          const x = Math.imul(h ^ (v * 2654435761), 2246822519) >>> 0;
          out[(b * seq + t) * VOCAB + v] = (x % 1000) / 250 + (v === opts.favour ? 20 : 0);
        }
      }
    }
    return out;
  };
  const unused = (): never => {
    throw new Error('not used by eval');
  };
  return {
    // the engine's batch operations eval does not use (a new one in ops.h lands here too)
    ...(Object.fromEntries(ENGINE_OPS.map((op) => [op, unused])) as Record<EngineOp, typeof unused>),
    name: 'fake',
    config,
    calls,
    logits(ids, batch, seq) {
      calls.push([batch, seq]);
      return logits(ids, batch, seq);
    },
    tokenLogprobs(ids, batch, seq) {
      calls.push([batch, seq]);
      const lg = logits(ids, batch, seq);
      const out = new Float32Array(batch * (seq - 1));
      for (let b = 0; b < batch; b++)
        for (let t = 0; t < seq - 1; t++) {
          const off = (b * seq + t) * VOCAB;
          let max = -Infinity;
          for (let v = 0; v < VOCAB; v++) max = Math.max(max, lg[off + v]!);
          let se = 0;
          for (let v = 0; v < VOCAB; v++) se += Math.exp(lg[off + v]! - max);
          out[b * (seq - 1) + t] = lg[off + ids[b * seq + t + 1]!]! - max - Math.log(se);
        }
      return out;
    },
    loadWeights: unused,
    exportWeights: unused,
    exportGrads: unused,
    zeroGrads: unused,
    applyAdamW: unused,
    exportOptimizer: unused,
    importOptimizer: unused,
    dispose: () => {},
  };
}
