/** ETA-DACP novelty: perplexity of a document's first tokens under the proxy model. */
import { PerplexityScorer, proxyEngine } from '../scorers.js';
import { proxyModel, type MetricDef } from './metric.js';

export const perplexity: MetricDef = {
  name: 'perplexity',
  label: 'log10 perplexity (proxy model)',
  logAxis: true,
  settings: (r) => ({ model: proxyModel(r), tokens: r.selection.perplexity_tokens }),
  async scorer(r) {
    const engine = await proxyEngine(r, proxyModel(r));
    return new PerplexityScorer(engine, r.selection.perplexity_tokens, async () => engine.dispose());
  },
};
