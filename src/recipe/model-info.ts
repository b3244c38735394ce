/** What a recipe's `model.init` names: a Pythia preset (fresh init) or an HF model directory. */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { NeoXConfig } from '../model/config.js';
import { PRESET_NAMES, presetConfig, presetKey } from '../model/presets.js';

export interface ModelInfo {
  kind: 'preset' | 'dir';
  /** Canonical preset name (`pythia-1b`) or absolute directory. */
  init: string;
  /** Pythia size key (`1b`) when known: the preset, the shape in config.json, or the directory name. */
  sizeKey?: string;
  /** Shape used for counts and estimates, and where it came from. */
  config?: NeoXConfig;
  configFrom?: 'preset' | 'config.json' | 'path name';
  /** Directory: present with a readable config.json. */
  exists: boolean;
  /** Directory present but unusable (not a directory, no config.json, bad JSON). */
  problem?: string;
}

/** `init` is already interpolated; `resolvePath` makes a directory absolute. */
export function modelInfo(init: string, resolvePath: (p: string) => string): ModelInfo {
  const key = presetKey(init);
  if (key && !init.includes('/')) return { kind: 'preset', init: `pythia-${key}`, sizeKey: key, config: presetConfig(key), configFrom: 'preset', exists: true };
  const dir = resolvePath(init);
  const info: ModelInfo = { kind: 'dir', init: dir, exists: false };
  const fromName = sizeFromPath(dir);
  if (fromName) Object.assign(info, { sizeKey: fromName, config: presetConfig(fromName), configFrom: 'path name' });
  if (!existsSync(dir)) return info;
  if (!statSync(dir).isDirectory()) return { ...info, problem: `${dir} is a file; expected a model directory containing config.json` };
  const cfgFile = path.join(dir, 'config.json');
  if (!existsSync(cfgFile)) return { ...info, problem: `${dir} has no config.json; expected a Hugging Face GPT-NeoX model directory` };
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    return { ...info, problem: `${cfgFile} is not valid JSON (${(e as Error).message})` };
  }
  const config = { ...presetConfig('pythia-70m') } as unknown as Record<string, unknown>;
  for (const k of Object.keys(config)) if (typeof json[k] === typeof config[k]) config[k] = json[k];
  const c = config as unknown as NeoXConfig;
  const match = PRESET_NAMES.map((n) => presetKey(n)!).find((k) => {
    const p = presetConfig(k);
    return p.hidden_size === c.hidden_size && p.num_hidden_layers === c.num_hidden_layers && p.num_attention_heads === c.num_attention_heads;
  });
  return { kind: 'dir', init: dir, exists: true, sizeKey: match ?? fromName, config: c, configFrom: 'config.json' };
}

/**
 * The Pythia size a path names, scanning components from the end: `models/pythia-1b`,
 * `pythia-1b-deduped/step143000`, `checkpoints/pythia-14m-base/final` → 1b, 1b, 14m.
 */
export function sizeFromPath(p: string): string | undefined {
  for (const part of p.split(/[\\/]+/).reverse()) {
    const m = /^(?:EleutherAI_)?pythia-(\d+(?:\.\d+)?[mb])(?:[-_.]|$)/i.exec(part);
    if (m && presetKey(m[1].toLowerCase())) return presetKey(m[1].toLowerCase());
  }
  return undefined;
}
