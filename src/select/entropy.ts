/**
 * ETA-DACP diversity: Shannon entropy (bits) of a document's part-of-speech tag distribution over
 * its word tokens (punctuation, numbers-as-symbols, emoji etc. excluded by wink's token type),
 * tagged with wink-nlp's English lite model (offline, ~1M words/s per core).
 */
import winkNLP from 'wink-nlp';
import model from 'wink-eng-lite-web-model';

type Nlp = ReturnType<typeof winkNLP>;
let nlp: Nlp | null = null;

interface Feature {
  hash: Record<string, number>;
  list: string[];
  intrinsicSize?: number;
}

/**
 * wink-nlp adds every out-of-vocabulary word to its lexicon, and its tokenizer then treats a word it
 * has seen before differently (an unknown "abc-def" is split; a remembered one is not), so a
 * document's tags would depend on which documents the same instance read earlier — scores would
 * change with worker chunking and with resumption. We hide the words learned from *earlier*
 * documents from lookups (words learned within the current document stay visible, as wink needs),
 * so every document is tagged as if it were the first: its tags are a function of its text alone.
 * A word re-learned gets a fresh lexicon slot: a few bytes per OOV occurrence.
 */
let lexicon: Feature | null = null;
/** Lexicon entries in [intrinsic, watermark) were learned from earlier documents. */
let intrinsic = 0;
let watermark = 0;

function historyFreeModel(m: typeof model): typeof model {
  const mm = m as unknown as { core: () => { features: Record<string, Feature> } };
  const core = mm.core.bind(m);
  return {
    ...mm,
    core: () => {
      const c = core();
      const lex = c.features.lexeme;
      intrinsic = lex.intrinsicSize ?? lex.list.length;
      lex.hash = new Proxy(lex.hash, {
        get: (t, k: string) => {
          const v = t[k];
          return v !== undefined && v >= intrinsic && v < watermark ? undefined : v;
        },
      });
      lexicon = lex;
      return c;
    },
  } as unknown as typeof model;
}

function getNlp(): Nlp {
  // Only the POS stage: sentence boundaries, negation, sentiment and NER are not needed here.
  nlp ??= winkNLP(historyFreeModel(model), ['pos']);
  return nlp;
}

export interface EntropyResult {
  /** Entropy in bits; NaN when the text has no word tokens. */
  bits: number;
  words: number;
}

/** Entropy (bits) of the counts' distribution; NaN for an empty distribution. */
export function entropyBits(counts: Iterable<number>): number {
  let total = 0;
  const cs: number[] = [];
  for (const c of counts) {
    if (c > 0) {
      cs.push(c);
      total += c;
    }
  }
  if (total === 0) return NaN;
  let h = 0;
  for (const c of cs) {
    const p = c / total;
    h -= p * Math.log2(p);
  }
  return h === 0 ? 0 : h; // avoid -0
}

/** POS tags of the word tokens of `text`, in order. */
export function wordPosTags(text: string): string[] {
  const n = getNlp();
  const its = n.its;
  watermark = lexicon!.list.length;
  const tokens = n.readDoc(text).tokens();
  const types = tokens.out(its.type) as string[];
  const pos = tokens.out(its.pos) as string[];
  const out: string[] = [];
  for (let i = 0; i < types.length; i++) if (types[i] === 'word') out.push(pos[i]);
  return out;
}

/** POS-tag entropy of one document. */
export function posEntropy(text: string): EntropyResult {
  const tags = wordPosTags(text);
  const counts = new Map<string, number>();
  for (const t of tags) counts.set(t, (counts.get(t) ?? 0) + 1);
  return { bits: entropyBits(counts.values()), words: tags.length };
}
