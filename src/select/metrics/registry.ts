/**
 * The selection metrics, by name: the one list. A new metric is one module (a MetricDef, its
 * scorer loaded only when called) plus one line in BUILT_IN; tests and plugins can add one with
 * registerMetric. Light on purpose: recipe resolution reads the names and facts through
 * select/recipe.ts without loading any scorer.
 */
import { UserError } from '../../util/errors.js';
import type { MetricDef } from './metric.js';
import { similarity } from './similarity.js';
import { perplexity } from './perplexity.js';
import { entropy } from './entropy.js';

export type { MetricDef, DocScorer } from './metric.js';

const BUILT_IN: MetricDef[] = [similarity, perplexity, entropy];

const registry = new Map<string, MetricDef>(BUILT_IN.map((m) => [m.name, m]));

/** Columns of the score table that are not metrics. */
const RESERVED = new Set(['id', 'source', 'shard', 'tokens']);

/** Adds a metric; returns its removal. */
export function registerMetric(m: MetricDef): () => void {
  if (!/^[a-z][a-z0-9_]*$/.test(m.name) || RESERVED.has(m.name)) throw new Error(`metric name "${m.name}": expected lower-case letters, digits and _, not ${[...RESERVED].join('/')}`);
  if (registry.has(m.name)) throw new Error(`metric "${m.name}" is registered already`);
  registry.set(m.name, m);
  return () => void registry.delete(m.name);
}

export function metricNames(): string[] {
  return [...registry.keys()];
}

/** The metric's definition, or undefined (recipe resolution asks before anything is scored). */
export function findMetric(name: string): MetricDef | undefined {
  return registry.get(name);
}

export function getMetric(name: string): MetricDef {
  const m = registry.get(name);
  if (!m) throw new UserError(`unknown selection metric "${name}"; expected one of ${metricNames().join(', ')}`);
  return m;
}

/** Metrics that can rank alone under eta-dacp: those not measured against the tasks. */
export function etaMetricNames(): string[] {
  return [...registry.values()].filter((m) => !m.needsTasks).map((m) => m.name);
}
