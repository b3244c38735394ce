import type { NeoXConfig } from '../model/config.js';
import type { Engine, EngineKind, EngineOptions } from './engine.js';
import { UserError } from '../util/errors.js';

export type { Engine, EngineKind, EngineOptions } from './engine.js';

/**
 * Create an engine for `config` with freshly allocated (zero) weights; call loadWeights next.
 * `native` is refused with the reason and the fix when the addon is not built; the caller falls
 * back to tfjs only where the user asked for it.
 */
export async function createEngine(kind: EngineKind, config: NeoXConfig, opts: EngineOptions = {}): Promise<Engine> {
  if (kind === 'native') {
    const native = await import('./native/index.js');
    const status = native.nativeStatus();
    if (!status.ok) throw new UserError(`the native engine is unavailable: ${status.reason}`);
    return native.createNativeEngine(config, opts);
  }
  if (kind === 'tfjs') {
    if (opts.precision === 'bf16') throw new UserError('precision bf16 is a native-engine option; the tfjs engine computes in fp32');
    const tfjs = await import('./tfjs/index.js');
    return tfjs.createTfjsEngine(config, opts);
  }
  throw new UserError(`unknown engine "${String(kind)}". Should be one of: native, tfjs`);
}
