/**
 * The selection metrics, by name, and which ones each method ranks by. A new metric is one module
 * (a MetricDef) plus one line in BUILT_IN; tests and plugins can add one with registerMetric.
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

/** Adds a metric; returns a function that removes it again. */
export function registerMetric(m: MetricDef): () => void {
  if (!/^[a-z][a-z0-9_]*$/.test(m.name) || RESERVED.has(m.name)) throw new Error(`metric name "${m.name}": expected lower-case letters, digits and _, not ${[...RESERVED].join('/')}`);
  if (registry.has(m.name)) throw new Error(`metric "${m.name}" is registered already`);
  registry.set(m.name, m);
  return () => void registry.delete(m.name);
}

export function metricNames(): string[] {
  return [...registry.keys()];
}

/** Metrics that can rank alone under eta-dacp: those not measured against the tasks. */
export function etaMetricNames(): string[] {
  return [...registry.values()].filter((m) => !m.needsTasks).map((m) => m.name);
}

export function getMetric(name: string): MetricDef {
  const m = registry.get(name);
  if (!m) throw new UserError(`unknown selection metric "${name}"; expected one of ${metricNames().join(', ')}`);
  return m;
}

/** The metrics a method ranks by: ETS-DACP similarity, ETA-DACP its selection.metric, ETS-DACP-com all three built-in ones; none for DACP and TACP. */
export function methodMetrics(method: string, metric?: string): string[] {
  switch (method) {
    case 'ets-dacp':
      return ['similarity'];
    case 'eta-dacp':
      return metric ? [metric] : [];
    case 'ets-dacp-com':
      return ['similarity', 'perplexity', 'entropy'];
    default:
      return [];
  }
}
