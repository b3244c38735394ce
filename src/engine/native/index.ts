import type { NeoXConfig } from '../../model/config.js';
import type { Engine, EngineOptions } from '../engine.js';

// Placeholder until the native engine lands (issue 4).
export function nativeStatus(): { ok: boolean; reason?: string } {
  return { ok: false, reason: 'not built yet' };
}
export function createNativeEngine(_config: NeoXConfig, _opts: EngineOptions): Engine {
  throw new Error('native engine not built yet');
}
