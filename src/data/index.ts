/** The data stage: input formats → Arrow shards → held-out split → tokenizer → token cache → packed rows. */
export type { Doc, SkipCounts } from './doc.js';
export { FORMATS, ReadContext, listFiles, readSource, readSpec, type InputFile } from './formats/index.js';
export { separatorOf } from './formats/text.js';
export {
  CORPUS_FORMAT,
  CORPUS_VERSION,
  prepareCorpus,
  preparedManifest,
  readArrowBatches,
  readDocs,
  readShardDocs,
  readManifest,
  verifyCorpus,
  type CorpusManifest,
  type PrepareOptions,
  type PrepareProgress,
  type PrepareResult,
  type ReadDocsOptions,
  type ShardCheck,
  type ShardInfo,
  type SourceSummary,
} from './shards.js';
export { DEFAULT_HELD_OUT_FRACTION, fmix64, fnv1a64, hashUnit, isHeldOut } from './split.js';
export { loadTokenizer, type Tokenizer, type TokenizerOptions } from './tokenizer.js';
export { readTokenized, tokenizeCorpus, verifyTokenCaches, type TokenizedDoc, type TokenizeOptions, type TokenizeProgress } from './token-cache.js';
export { openPacked, packDocuments, shuffle, type PackInput, type PackedDataset, type PackedManifest } from './pack.js';
export { pileTestDir } from './paths.js';
export * from './tasks/index.js';
