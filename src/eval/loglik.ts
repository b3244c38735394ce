import type { Engine } from '../engine/engine.js';
import { moveTrailingSpace, type Request } from './prompt.js';

/** What scoring needs of a tokenizer (src/data/tokenizer.ts's Tokenizer satisfies it). */
export interface EvalTokenizer {
  encode(text: string): Int32Array;
  readonly eosId: number;
}

/** A request as token ids: the context and the continuation scored after it. */
export interface EncodedRequest {
  ctx: Int32Array;
  cont: Int32Array;
}

/**
 * lm-eval `_encode_pair`: after the trailing-space move, encode context + continuation as one
 * string and split it at the context's own token count, so the continuation's tokens are the ones
 * the model would see in the running text. An empty context is replaced by the EOS token.
 * `cache` memoises context encodings (all choices of a document share one context).
 */
export function encodePair(tok: EvalTokenizer, r: Request, cache?: Map<string, number>): EncodedRequest {
  const { context, continuation } = moveTrailingSpace(r);
  if (context === '') return { ctx: Int32Array.of(tok.eosId), cont: tok.encode(continuation) };
  const whole = tok.encode(context + continuation);
  let n = cache?.get(context);
  if (n === undefined) {
    n = tok.encode(context).length;
    cache?.set(context, n);
  }
  return { ctx: whole.subarray(0, n), cont: whole.subarray(n) };
}

export interface ScoreOptions {
  /** Rows per engine call. */
  batch: number;
  /** Longest row the model takes (max_position_embeddings); longer rows keep their right end. */
  maxLen: number;
  /** Also report whether the continuation is the greedy (argmax) output at every position. */
  greedy?: boolean;
  /** Pad id: any id works, padded positions are causally after every scored one and ignored. */
  padId?: number;
  /**
   * Score requests that share a context and each continue it by one token (every choice of the
   * financial tasks) with one forward of the context: the next-token distribution at its last
   * position gives all of them. Default true; the result is the same either way.
   */
  shareContext?: boolean;
  /** Called after each engine call with the number of requests it scored. */
  onBatch?: (n: number) => void;
}

export interface ScoredRequest {
  /** Sum of log p(continuation token | everything before it). */
  ll: number;
  /** Continuation tokens actually scored (fewer than cont.length only if cont exceeds maxLen). */
  tokens: number;
  /** Greedy match (only with opts.greedy). */
  greedy?: boolean;
}

/**
 * Score requests in batches through the engine. Rows are sorted longest first (as lm-eval does) so
 * each batch pads little; rows are right-padded, which cannot change the causal log-probs of the
 * real positions, and the padded positions are never read. Results come back in input order.
 */
export function scoreRequests(engine: Engine, reqs: readonly EncodedRequest[], opts: ScoreOptions): ScoredRequest[] {
  const out: ScoredRequest[] = new Array(reqs.length);
  let rest = Array.from(reqs.keys());
  if (opts.shareContext ?? true) {
    const groups = new Map<string, number[]>();
    for (const i of rest) {
      if (reqs[i]!.cont.length !== 1) continue;
      const k = reqs[i]!.ctx.join(',');
      const g = groups.get(k);
      if (g) g.push(i);
      else groups.set(k, [i]);
    }
    const shared = [...groups.values()].filter((g) => g.length > 1);
    const done = new Set(shared.flat());
    rest = rest.filter((i) => !done.has(i));
    scoreShared(engine, reqs, shared, opts, out);
  }
  scoreRows(engine, reqs, rest, opts, out);
  return out;
}

/** Longest allowed width of a call that returns full logits (~64M floats). */
function logitsCap(opts: ScoreOptions, seq: number, vocab: number): number {
  return Math.max(1, Math.min(opts.batch, Math.floor(64e6 / (seq * vocab))));
}

/** Log-softmax value of `target` and whether it is the argmax, from one position's logits. */
function fromLogits(logits: Float32Array, off: number, vocab: number, target: number): { lp: number; top: boolean } {
  let max = -Infinity;
  let arg = 0;
  for (let v = 0; v < vocab; v++) if (logits[off + v]! > max) (max = logits[off + v]!), (arg = v);
  let se = 0;
  for (let v = 0; v < vocab; v++) se += Math.exp(logits[off + v]! - max);
  return { lp: logits[off + target]! - max - Math.log(se), top: arg === target };
}

/** Groups of one-token continuations of one context: a forward of the context alone. */
function scoreShared(engine: Engine, reqs: readonly EncodedRequest[], groups: number[][], opts: ScoreOptions, out: ScoredRequest[]): void {
  const vocab = engine.config.vocab_size;
  // Same truncation as the full row (ctx + 1 token) to maxLen.
  const rows = groups.map((g) => {
    const ctx = reqs[g[0]!]!.ctx;
    return ctx.length > opts.maxLen - 1 ? ctx.subarray(ctx.length - (opts.maxLen - 1)) : ctx;
  });
  const order = Array.from(rows.keys()).sort((a, b) => rows[b]!.length - rows[a]!.length || a - b);
  for (let s = 0; s < order.length; ) {
    const seq = Math.max(1, rows[order[s]!]!.length);
    const members = order.slice(s, s + logitsCap(opts, seq, vocab));
    s += members.length;
    const ids = new Int32Array(members.length * seq).fill(opts.padId ?? 0);
    members.forEach((m, i) => ids.set(rows[m]!, i * seq));
    const logits = engine.logits(ids, members.length, seq);
    let n = 0;
    members.forEach((m, i) => {
      const off = (i * seq + rows[m]!.length - 1) * vocab;
      for (const r of groups[m]!) {
        const { lp, top } = fromLogits(logits, off, vocab, reqs[r]!.cont[0]!);
        out[r] = { ll: lp, tokens: 1, greedy: opts.greedy ? top : undefined };
        n++;
      }
    });
    opts.onBatch?.(n);
  }
}

/** Each request as its own row: context + continuation. */
function scoreRows(engine: Engine, reqs: readonly EncodedRequest[], which: number[], opts: ScoreOptions, out: ScoredRequest[]): void {
  const rows = new Map(
    which.map((k) => {
      const r = reqs[k]!;
      const full = new Int32Array(r.ctx.length + r.cont.length);
      full.set(r.ctx);
      full.set(r.cont, r.ctx.length);
      const row = full.length > opts.maxLen ? full.subarray(full.length - opts.maxLen) : full;
      // Position 0 has no prediction, so at most row.length - 1 continuation tokens are scorable.
      return [k, { row, contLen: Math.min(r.cont.length, row.length - 1) }] as const;
    }),
  );
  const order = [...which].sort((a, b) => rows.get(b)!.row.length - rows.get(a)!.row.length || a - b);
  const pad = opts.padId ?? 0;
  const vocab = engine.config.vocab_size;
  for (let s = 0; s < order.length; ) {
    const seq = Math.max(2, rows.get(order[s]!)!.row.length);
    // Greedy needs full logits: bound a call's size.
    const cap = opts.greedy ? logitsCap(opts, seq, vocab) : opts.batch;
    const members = order.slice(s, s + cap);
    s += members.length;
    const b = members.length;
    const ids = new Int32Array(b * seq).fill(pad);
    members.forEach((m, i) => ids.set(rows.get(m)!.row, i * seq));
    if (!opts.greedy) {
      const lp = engine.tokenLogprobs(ids, b, seq);
      members.forEach((m, i) => {
        const { row, contLen } = rows.get(m)!;
        let ll = 0;
        for (let t = row.length - contLen; t < row.length; t++) ll += lp[i * (seq - 1) + t - 1]!;
        out[m] = { ll, tokens: contLen };
      });
    } else {
      const logits = engine.logits(ids, b, seq);
      members.forEach((m, i) => {
        const { row, contLen } = rows.get(m)!;
        let ll = 0;
        let greedy = true;
        for (let t = row.length - contLen; t < row.length; t++) {
          const { lp, top } = fromLogits(logits, (i * seq + t - 1) * vocab, vocab, row[t]!);
          ll += lp;
          if (!top) greedy = false;
        }
        out[m] = { ll, tokens: contLen, greedy };
      });
    }
    opts.onBatch?.(b);
  }
}
