/**
 * The names a recipe may use, each declared once: selection methods (and the metrics they rank
 * by), what recipe resolution must know about a metric, finance tasks, input formats. Kept below
 * the stages that implement them, so loading a recipe never loads a scorer: select/metrics
 * registers each metric's scorer under a name declared here (or adds one with addMetric).
 */
export const METHODS = ['dacp', 'tacp', 'ets-dacp', 'eta-dacp', 'ets-dacp-com'] as const;
export type Method = (typeof METHODS)[number];

/** Methods that train on everything they are given unless a budget is set. */
export const FULL_DATA_METHODS: ReadonlySet<Method> = new Set(['dacp', 'tacp']);
/** Methods whose selection is defined by the task data. */
export const TASK_METHODS: ReadonlySet<Method> = new Set(['tacp', 'ets-dacp', 'ets-dacp-com']);

export const FIN_TASKS = ['fpb', 'fiqa_sa', 'headline', 'ner'] as const;
export type FinTask = (typeof FIN_TASKS)[number];

export const FORMATS = ['reuters-sgml', 'wikiextractor', 'jsonl', 'json', 'text', 'csv'] as const;
export type InputFormat = (typeof FORMATS)[number];

/** What resolution needs of a metric. */
export interface MetricFacts {
  /** Measured against the tasks' text (ETS-DACP); task-free metrics can rank alone under eta-dacp. */
  readonly needsTasks?: boolean;
  /** Scored with the proxy model (selection.proxy_model, else model.init). */
  readonly usesProxy?: boolean;
}

const metrics = new Map<string, MetricFacts>([
  ['similarity', { needsTasks: true }],
  ['perplexity', { usesProxy: true }],
  ['entropy', {}],
]);

export function metricNames(): string[] {
  return [...metrics.keys()];
}

export function metricFacts(name: string): MetricFacts | undefined {
  return metrics.get(name);
}

/** Declares a metric (select/metrics' registerMetric does, for plugins); returns its removal. */
export function addMetric(name: string, facts: MetricFacts): () => void {
  if (metrics.has(name)) throw new Error(`metric "${name}" is registered already`);
  metrics.set(name, facts);
  return () => void metrics.delete(name);
}

/** Metrics that can rank alone under eta-dacp: those not measured against the tasks. */
export function etaMetricNames(): string[] {
  return [...metrics].filter(([, f]) => !f.needsTasks).map(([n]) => n);
}

/** The metrics a method ranks by: ETS-DACP similarity, ETA-DACP its selection.metric, ETS-DACP-com all three built-in ones; none for DACP and TACP. */
export function methodMetrics(method: Method, metric?: string): string[] {
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
