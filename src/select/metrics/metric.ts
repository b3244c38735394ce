/**
 * What a selection metric declares: how it scores a document, what its scores depend on, and how
 * the report shows it. Every metric is "higher is preferred": sample.ts turns scores into ranks.
 */
import type { Tokenizer } from '../../data/index.js';
import type { Recipe } from '../../recipe/types.js';

/** Scores batches of documents (their texts and cached token ids) by one metric; NaN = no score. */
export interface DocScorer {
  score(texts: string[], tokens: Int32Array[]): Promise<Float64Array>;
  close?(): Promise<void>;
}

export interface MetricDef {
  /** Score-table column, and the `selection.metric` value that ranks by it alone (eta-dacp). */
  readonly name: string;
  /** Axis title of the report's histogram. */
  readonly label: string;
  /** Histogram on a log10 axis (scores spanning orders of magnitude). */
  readonly logAxis?: boolean;
  /** Measured against the tasks' text (ETS-DACP); a task-free metric can rank alone under eta-dacp. */
  readonly needsTasks?: boolean;
  /** Scored with the proxy model (selection.proxy_model, else model.init). */
  readonly usesProxy?: boolean;
  /** Recipe settings the scores depend on; with the corpus, Fin-test split and tokenizer they key the score cache. */
  settings(r: Recipe): unknown;
  /** A scorer for this recipe; the caller closes it. Loads what it scores with (models, taggers) only when called, so reading a recipe never does. */
  scorer(r: Recipe, tok: Tokenizer): Promise<DocScorer>;
}

/** The proxy model for perplexity (and the default `model` embedder): selection.proxy_model, else model.init. */
export function proxyModel(r: Recipe): string {
  return r.selection.proxy_model ?? r.model.init;
}
