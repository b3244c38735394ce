/**
 * The tfjs reference engine: readable GPT-NeoX (model.ts) with autodiff gradients, gradient
 * accumulation and AdamW, implementing every Engine method. It is the yardstick the native
 * engine is compared against, and the fallback where the native addon is not built.
 *
 * Every call runs inside tf.tidy (or disposes what it made), so the live tensor count stays
 * constant across steps: weights, gradient accumulators and the two AdamW moments are the only
 * tensors that outlive a call.
 */
import type * as tfTypes from '@tensorflow/tfjs';
import { tf, initBackend } from './backend.js';
import { registerFastMatMul } from './kernels.js';
import { hiddenStates, logits as logitsOf, meanLoss, targetLogprobs, type Params } from './model.js';
import { paramSpecs, type NeoXConfig, type ParamSpec } from '../../model/config.js';
import type { AdamWOptions, Engine, EngineOptions, OptimizerState, WeightMap } from '../engine.js';

let instances = 0;

/** Internal switches (tests): `fusedAdamW` forces the JS AdamW loop on or off (default: on for cpu). */
export interface TfjsInternals {
  fusedAdamW?: boolean;
}

export async function createTfjsEngine(config: NeoXConfig, _opts: EngineOptions = {}, internals: TfjsInternals = {}): Promise<Engine> {
  const name = await initBackend();
  registerFastMatMul();
  return new TfjsEngine(config, name, internals.fusedAdamW ?? name === 'tfjs-cpu');
}

class TfjsEngine implements Engine {
  private readonly specs: ParamSpec[];
  private readonly w = new Map<string, tfTypes.Variable>();
  private readonly g = new Map<string, tfTypes.Variable>();
  private readonly m = new Map<string, tfTypes.Variable>();
  private readonly v = new Map<string, tfTypes.Variable>();
  private step = 0;
  private readonly params: Params;

  constructor(readonly config: NeoXConfig, readonly name: string, private readonly fusedAdamW: boolean) {
    this.specs = paramSpecs(config);
    // tfjs variable names are process-global: prefix with an instance id.
    const id = `tfjs${instances++}`;
    for (const s of this.specs) {
      this.w.set(s.name, tf.variable(tf.zeros(s.shape), true, `${id}/w/${s.name}`));
      this.g.set(s.name, tf.variable(tf.zeros(s.shape), false, `${id}/g/${s.name}`));
      this.m.set(s.name, tf.variable(tf.zeros(s.shape), false, `${id}/m/${s.name}`));
      this.v.set(s.name, tf.variable(tf.zeros(s.shape), false, `${id}/v/${s.name}`));
    }
    this.params = (n) => {
      const t = this.w.get(n);
      if (!t) throw new Error(`tfjs engine: no parameter "${n}"`);
      return t;
    };
  }

  loadWeights(weights: WeightMap): void {
    assignAll(this.specs, this.w, weights, 'weights');
  }

  exportWeights(): WeightMap {
    return readAll(this.w);
  }

  logits(ids: Int32Array, batch: number, seq: number): Float32Array {
    checkIds(ids, batch, seq, this.config.vocab_size);
    return this.run(() => logitsOf(this.config, this.params, ids, batch, seq));
  }

  trainStep(ids: Int32Array, batch: number, seq: number, gradScale = 1): number {
    checkIds(ids, batch, seq, this.config.vocab_size, 2);
    const vars = [...this.w.values()];
    const loss = tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => meanLoss(this.config, this.params, ids, batch, seq), vars);
      for (const [n, acc] of this.g) {
        const g = grads[this.w.get(n)!.name];
        acc.assign(acc.add(gradScale === 1 ? g : g.mul(gradScale)));
      }
      return value;
    });
    const out = loss.dataSync()[0];
    loss.dispose();
    return out;
  }

  exportGrads(): WeightMap {
    return readAll(this.g);
  }

  zeroGrads(): void {
    for (const acc of this.g.values()) tf.tidy(() => acc.assign(tf.zerosLike(acc)));
  }

  applyAdamW(o: AdamWOptions): { gradNorm: number } {
    // Global norm in float64 over per-tensor float32 sums of squares.
    let sq = 0;
    for (const acc of this.g.values()) sq += tf.tidy(() => acc.square().sum().dataSync()[0]);
    const gradNorm = Math.sqrt(sq);
    if (!Number.isFinite(gradNorm)) {
      this.zeroGrads(); // never let NaN or Inf into the weights (the engine contract)
      return { gradNorm };
    }
    // torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is below 1.
    const clipScale = o.clip > 0 ? Math.min(1, o.clip / (gradNorm + 1e-6)) : 1;
    this.step++;
    const bc1 = 1 - Math.pow(o.beta1, this.step), bc2 = 1 - Math.pow(o.beta2, this.step);
    for (const s of this.specs) {
      const w = this.w.get(s.name)!, acc = this.g.get(s.name)!, m = this.m.get(s.name)!, v = this.v.get(s.name)!;
      const decay = s.decay && o.weightDecay > 0 ? 1 - o.lr * o.weightDecay : 1;
      if (this.fusedAdamW) {
        // Values live in JS memory on the cpu backend: one fused float64 loop instead of ~12 ops.
        const W = Float32Array.from(w.dataSync() as Float32Array), G = acc.dataSync() as Float32Array;
        const Mv = Float32Array.from(m.dataSync() as Float32Array), Vv = Float32Array.from(v.dataSync() as Float32Array);
        for (let i = 0; i < W.length; i++) {
          const g = G[i] * clipScale;
          Mv[i] = o.beta1 * Mv[i] + (1 - o.beta1) * g;
          Vv[i] = o.beta2 * Vv[i] + (1 - o.beta2) * g * g;
          W[i] = W[i] * decay - (o.lr * (Mv[i] / bc1)) / (Math.sqrt(Vv[i] / bc2) + o.eps);
        }
        tf.tidy(() => {
          w.assign(tf.tensor(W, s.shape));
          m.assign(tf.tensor(Mv, s.shape));
          v.assign(tf.tensor(Vv, s.shape));
          acc.assign(tf.zerosLike(acc));
        });
        continue;
      }
      tf.tidy(() => {
        const g = acc.mul(clipScale);
        m.assign(m.mul(o.beta1).add(g.mul(1 - o.beta1)));
        v.assign(v.mul(o.beta2).add(g.square().mul(1 - o.beta2)));
        // torch.optim.AdamW: p *= 1 - lr*wd (decayed params only), then p -= lr * m̂ / (sqrt(v̂) + eps).
        const update = m.div(bc1).div(v.div(bc2).sqrt().add(o.eps)).mul(o.lr);
        w.assign(w.mul(decay).sub(update));
        acc.assign(tf.zerosLike(acc));
      });
    }
    return { gradNorm };
  }

  evalLoss(ids: Int32Array, batch: number, seq: number): number {
    checkIds(ids, batch, seq, this.config.vocab_size, 2);
    return this.run(() => meanLoss(this.config, this.params, ids, batch, seq))[0];
  }

  tokenLogprobs(ids: Int32Array, batch: number, seq: number): Float32Array {
    checkIds(ids, batch, seq, this.config.vocab_size, 2);
    return this.run(() => targetLogprobs(this.config, this.params, ids, batch, seq));
  }

  meanHidden(ids: Int32Array, batch: number, seq: number, lengths: Int32Array): Float32Array {
    checkIds(ids, batch, seq, this.config.vocab_size);
    if (lengths.length !== batch) throw new Error(`meanHidden: ${lengths.length} lengths for batch ${batch}`);
    const mask = new Float32Array(batch * seq);
    for (let b = 0; b < batch; b++) {
      const n = lengths[b];
      if (!(n >= 1 && n <= seq)) throw new Error(`meanHidden: lengths[${b}] = ${n}, expected 1..${seq}`);
      mask.fill(1 / n, b * seq, b * seq + n);
    }
    const D = this.config.hidden_size;
    return this.run(() => {
      const h = hiddenStates(this.config, this.params, ids, batch, seq).reshape([batch, seq, D]);
      return h.mul(tf.tensor3d(mask, [batch, seq, 1])).sum(1);
    });
  }

  exportOptimizer(): OptimizerState {
    return { step: this.step, m: readAll(this.m), v: readAll(this.v) };
  }

  importOptimizer(s: OptimizerState): void {
    if (!(Number.isInteger(s.step) && s.step >= 0)) throw new Error(`importOptimizer: step ${s.step} is not a non-negative integer`);
    assignAll(this.specs, this.m, s.m, 'optimizer m');
    assignAll(this.specs, this.v, s.v, 'optimizer v');
    this.step = s.step;
  }

  dispose(): void {
    for (const map of [this.w, this.g, this.m, this.v]) {
      for (const t of map.values()) t.dispose();
      map.clear();
    }
  }

  /** Evaluate `f` in a tidy scope and copy its result out (dataSync may alias backend memory). */
  private run(f: () => tfTypes.Tensor): Float32Array {
    return tf.tidy(() => new Float32Array(f().dataSync() as Float32Array));
  }
}

function checkIds(ids: Int32Array, batch: number, seq: number, vocab: number, minSeq = 1): void {
  if (!(Number.isInteger(batch) && batch >= 1 && Number.isInteger(seq) && seq >= minSeq)) {
    throw new Error(`tfjs engine: batch ${batch} x seq ${seq} (need batch >= 1, seq >= ${minSeq})`);
  }
  if (ids.length !== batch * seq) throw new Error(`tfjs engine: ${ids.length} ids for batch ${batch} x seq ${seq}`);
  for (let i = 0; i < ids.length; i++) {
    if (!(ids[i] >= 0 && ids[i] < vocab)) throw new Error(`tfjs engine: token id ${ids[i]} at [${i}] outside the vocabulary [0, ${vocab})`);
  }
}

function assignAll(specs: ParamSpec[], dst: Map<string, tfTypes.Variable>, src: WeightMap, what: string): void {
  for (const s of specs) {
    const data = src.get(s.name);
    const n = s.shape.reduce((a, b) => a * b, 1);
    if (!data) throw new Error(`tfjs engine: ${what} lack "${s.name}"`);
    if (data.length !== n) throw new Error(`tfjs engine: ${what} "${s.name}" has ${data.length} values, expected ${n} for [${s.shape}]`);
  }
  for (const s of specs) tf.tidy(() => dst.get(s.name)!.assign(tf.tensor(src.get(s.name)!, s.shape, 'float32')));
}

function readAll(src: Map<string, tfTypes.Variable>): WeightMap {
  const out: WeightMap = new Map();
  for (const [n, t] of src) out.set(n, new Float32Array(t.dataSync() as Float32Array));
  return out;
}
