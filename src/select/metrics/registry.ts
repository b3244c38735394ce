/**
 * The selection metrics, by name, and which ones each method ranks by. A new metric is one module
 * (a MetricDef) plus one line in BUILT_IN; tests and plugins can add one with registerMetric.
 */
import { UserError } from '../../util/errors.js';
import { addMetric, metricFacts } from '../../recipe/names.js';
import type { MetricDef } from './metric.js';
import { similarity } from './similarity.js';
import { perplexity } from './perplexity.js';
import { entropy } from './entropy.js';

export type { MetricDef, DocScorer } from './metric.js';

const BUILT_IN: MetricDef[] = [similarity, perplexity, entropy];

const registry = new Map<string, MetricDef>(BUILT_IN.map((m) => [m.name, m]));
for (const m of BUILT_IN) if (!metricFacts(m.name)) throw new Error(`built-in metric ${m.name} is not declared in recipe/names.ts`);

/** Columns of the score table that are not metrics. */
const RESERVED = new Set(['id', 'source', 'shard', 'tokens']);

/** Adds a metric (its scorer here, its name and facts for recipes in recipe/names); returns its removal. */
export function registerMetric(m: MetricDef, facts: { needsTasks?: boolean; usesProxy?: boolean } = {}): () => void {
  if (!/^[a-z][a-z0-9_]*$/.test(m.name) || RESERVED.has(m.name)) throw new Error(`metric name "${m.name}": expected lower-case letters, digits and _, not ${[...RESERVED].join('/')}`);
  if (registry.has(m.name)) throw new Error(`metric "${m.name}" is registered already`);
  const undeclare = addMetric(m.name, facts);
  registry.set(m.name, m);
  return () => {
    registry.delete(m.name);
    undeclare();
  };
}

export function metricNames(): string[] {
  return [...registry.keys()];
}

export function getMetric(name: string): MetricDef {
  const m = registry.get(name);
  if (!m) throw new UserError(`unknown selection metric "${name}"; expected one of ${metricNames().join(', ')}`);
  return m;
}
