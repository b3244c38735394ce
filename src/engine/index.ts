import type { NeoXConfig } from '../model/config.js';
import type { Engine, EngineOptions } from './engine.js';
import { ENGINES, ENGINE_KINDS, type EngineKind } from './registry.js';
import { UserError } from '../util/errors.js';

export type { Engine, EngineOptions, Precision } from './engine.js';
export { ENGINES, ENGINE_KINDS, ENGINE_LIST, PRECISIONS, parseEngineKind, defaultEngineKind, type EngineKind } from './registry.js';

/**
 * Create an engine for `config` with freshly allocated (zero) weights; call loadWeights next.
 * An engine that cannot run here is refused with the reason and the fix; callers fall back to
 * another kind only where the user asked for it.
 */
export async function createEngine(kind: EngineKind, config: NeoXConfig, opts: EngineOptions = {}): Promise<Engine> {
  const entry = ENGINES[kind];
  if (!entry) throw new UserError(`unknown engine "${String(kind)}". Should be one of: ${ENGINE_KINDS.join(', ')}`);
  const why = await entry.unavailable();
  if (why) throw new UserError(`the ${kind} engine is unavailable: ${why}`);
  return entry.create(config, opts);
}
