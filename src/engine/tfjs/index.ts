import type { NeoXConfig } from '../../model/config.js';
import type { Engine, EngineOptions } from '../engine.js';

// Placeholder until the tfjs engine lands (issue 3).
export async function createTfjsEngine(_config: NeoXConfig, _opts: EngineOptions): Promise<Engine> {
  throw new Error('tfjs engine not built yet');
}
