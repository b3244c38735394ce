/** ETA-DACP novelty: perplexity of a document's first tokens under the proxy model. */
import { proxyModel, type MetricDef } from './metric.js';

export const perplexity: MetricDef = {
  name: 'perplexity',
  label: 'log10 perplexity (proxy model)',
  logAxis: true,
  usesProxy: true,
  settings: (r) => ({ model: proxyModel(r), tokens: r.selection.perplexity_tokens }),
  async scorer(r) {
    const { PerplexityScorer, proxyEngine } = await import('../scorers.js');
    const engine = await proxyEngine(r, proxyModel(r));
    return new PerplexityScorer(engine, r.selection.perplexity_tokens, async () => engine.dispose());
  },
};
