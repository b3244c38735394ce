/**
 * ETA-DACP diversity: Shannon entropy (bits) of a document's part-of-speech tag distribution over
 * its word tokens (punctuation, numbers-as-symbols, emoji etc. excluded by wink's token type),
 * tagged with wink-nlp's English lite model (offline, ~1M words/s per core).
 */
import winkNLP from 'wink-nlp';
import model from 'wink-eng-lite-web-model';

type Nlp = ReturnType<typeof winkNLP>;
let nlp: Nlp | null = null;

function getNlp(): Nlp {
  // Only the POS stage: sentence boundaries, negation, sentiment and NER are not needed here.
  nlp ??= winkNLP(model, ['pos']);
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
