/**
 * A resolved recipe: every default filled in, every path absolute. Produced only by `loadRecipe`
 * (src/recipe/load.ts). Each section's type is derived from the schema of the stage that reads it.
 */
import type { DataConfig } from '../data/recipe.js';
import type { EngineConfig } from '../engine/recipe.js';
import type { ModelSpec } from '../model/recipe.js';
import type { MonitorConfig } from '../monitor/recipe.js';
import type { SelectionConfig } from '../select/recipe.js';
import type { CheckpointConfig, TrainConfig } from '../train/recipe.js';
import type { FinTask } from '../data/tasks/index.js';
import type { InputFormat } from '../data/formats/index.js';
import type { Method } from './names.js';

export type { FinTask, InputFormat, Method };
export type { SourceSpec } from '../data/recipe.js';
export type { EmbedderSpec, Sampling } from '../select/recipe.js';

export interface Recipe {
  /** Recipe file it came from (absolute), for error messages. */
  file: string;
  name: string;
  method: Method;
  run_dir: string;
  data: DataConfig;
  selection: SelectionConfig;
  model: ModelSpec;
  train: TrainConfig;
  monitor: MonitorConfig;
  checkpoint: CheckpointConfig;
  engine: EngineConfig;
}
