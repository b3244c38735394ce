/** ETS-DACP: cosine similarity of a document to the centroid of the tasks' train-split text. */
import { dataDir } from '../../util/paths.js';
import { UserError } from '../../util/errors.js';
import { proxyModel, type MetricDef } from './metric.js';

export const similarity: MetricDef = {
  name: 'similarity',
  label: 'cosine similarity to the task',
  needsTasks: true,
  settings(r) {
    const e = r.selection.embedder;
    const embedder = e.kind === 'hashed' ? { dim: e.dim, ngrams: e.ngrams, hashedVersion: 1 } : { model: e.kind === 'model' ? (e.model ?? proxyModel(r)) : e.model, max_tokens: e.max_tokens };
    return { tasks: [...r.data.tasks].sort(), kind: e.kind, ...embedder };
  },
  async scorer(r, tok) {
    if (r.data.tasks.length === 0) throw new UserError(`${r.file}: data.tasks: ${r.method} needs at least one task to measure similarity to`);
    const { taskTexts } = await import('../../data/index.js');
    const { DenseSimilarityScorer, TextPoolScorer, modelEmbed, proxyEngine, transformersEmbed } = await import('../scorers.js');
    // Train split only: the evaluation test split must not shape the training data.
    const tasks: string[] = [];
    for (const t of r.data.tasks) tasks.push(...(await taskTexts(t, 'train', dataDir())));
    const e = r.selection.embedder;
    switch (e.kind) {
      case 'hashed':
        return new TextPoolScorer({ hashed: { spec: e, taskTexts: tasks } }, r.engine.threads || undefined);
      case 'model': {
        const engine = await proxyEngine(r, e.model ?? proxyModel(r));
        return DenseSimilarityScorer.create(modelEmbed(engine, e.max_tokens), tasks, await tok.encodeBatch(tasks), async () => engine.dispose());
      }
      case 'transformers': {
        const embed = await transformersEmbed(e.model, `${r.file}: selection.embedder`);
        return DenseSimilarityScorer.create(async (texts) => embed(texts), tasks, []);
      }
    }
  },
};
