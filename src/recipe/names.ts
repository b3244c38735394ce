/**
 * The training methods, declared once, and the metrics each ranks by. A leaf below the stages.
 * Each other list is its stage's: metrics select/metrics/registry.ts, tasks data/tasks/index.ts,
 * input formats data/formats/index.ts, engine kinds engine/registry.ts.
 */
export const METHODS = ['dacp', 'tacp', 'ets-dacp', 'eta-dacp', 'ets-dacp-com'] as const;
export type Method = (typeof METHODS)[number];

/** Methods that train on everything they are given unless a budget is set. */
export const FULL_DATA_METHODS: ReadonlySet<Method> = new Set(['dacp', 'tacp']);
/** Methods whose selection is defined by the task data. */
export const TASK_METHODS: ReadonlySet<Method> = new Set(['tacp', 'ets-dacp', 'ets-dacp-com']);



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
