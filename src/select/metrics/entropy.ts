/** ETA-DACP diversity: entropy of a document's part-of-speech tag distribution. */
import type { MetricDef } from './metric.js';

export const entropy: MetricDef = {
  name: 'entropy',
  label: 'POS-tag entropy (bits)',
  settings: () => ({ tagger: 'wink-eng-lite-web-model', v: 1 }),
  scorer: async (r) => new (await import('../scorers.js')).TextPoolScorer({ entropy: true }, r.engine.threads || undefined),
};
