import path from 'node:path';
import { UserError } from '../../util/errors.js';
import { readTaskFile, lines } from './read.js';
import type { GoldEntity, TaskData, TaskDoc } from './types.js';

/** Entity types scored (FLARE FinNER); the 14 MISC tokens are treated as O. */
export const NER_TYPES = ['PER', 'ORG', 'LOC'] as const;
/** Choice words for a candidate span, in order; the last means "not an entity". */
export const NER_CHOICES = ['person', 'organization', 'location', 'none'] as const;

export interface NerSentence {
  id: string;
  tokens: string[];
  /** Per token: PER/ORG/LOC or O. */
  tags: string[];
}

/** CoNLL-2003 style, IO tags: `token POS chunk NER`, blank lines between sentences. */
export function parseConll(file: string, text: string, prefix: string): NerSentence[] {
  const out: NerSentence[] = [];
  let cur: NerSentence = { id: '', tokens: [], tags: [] };
  const flush = () => {
    if (cur.tokens.length) out.push({ ...cur, id: `${prefix}-${out.length + 1}` });
    cur = { id: '', tokens: [], tags: [] };
  };
  lines(text).forEach((line, i) => {
    if (!line.trim()) return flush();
    if (line.startsWith('-DOCSTART-')) return flush();
    const cols = line.trim().split(/\s+/);
    if (cols.length < 2) throw new UserError(`${file}:${i + 1}: expected "token POS chunk TAG", got ${JSON.stringify(line)}`);
    const tag = cols[cols.length - 1]!;
    const m = /^[IB]-(PER|ORG|LOC|MISC)$/.exec(tag);
    if (tag !== 'O' && !m) throw new UserError(`${file}:${i + 1}: unknown NER tag "${tag}" (expected O or I-PER/ORG/LOC/MISC)`);
    cur.tokens.push(cols[0]!);
    cur.tags.push(m && m[1] !== 'MISC' ? m[1]! : 'O');
  });
  flush();
  return out;
}

/** Gold entities: maximal runs of one type (IO scheme has no B- boundaries). */
export function goldEntities(s: NerSentence): GoldEntity[] {
  const out: GoldEntity[] = [];
  for (let i = 0; i < s.tags.length; ) {
    const t = s.tags[i]!;
    let j = i + 1;
    while (j < s.tags.length && s.tags[j] === t) j++;
    if (t !== 'O') out.push({ group: s.id, start: i, end: j, type: t });
    i = j;
  }
  return out;
}

/** Sentence-initial capitalised determiners, dropped from the front of a candidate ("The Borrower"). */
const DETERMINERS = new Set(['The', 'A', 'An', 'This', 'That', 'These', 'Each', 'Any', 'Such', 'Every', 'Its', 'Their']);

/**
 * Candidate spans, chosen without looking at the gold tags: maximal runs of tokens that start with
 * an uppercase letter, minus a leading determiner. Each is classified by the model among
 * person/organization/location/none.
 */
export function candidateSpans(tokens: string[]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  const cap = (t: string) => /^\p{Lu}/u.test(t);
  for (let i = 0; i < tokens.length; ) {
    if (!cap(tokens[i]!)) {
      i++;
      continue;
    }
    let j = i + 1;
    while (j < tokens.length && cap(tokens[j]!)) j++;
    const start = DETERMINERS.has(tokens[i]!) && j - i > 1 ? i + 1 : i;
    out.push([start, j]);
    i = j;
  }
  return out;
}

function candidateDocs(sentences: NerSentence[]): { docs: TaskDoc[]; entities: GoldEntity[] } {
  const docs: TaskDoc[] = [];
  const entities: GoldEntity[] = [];
  for (const s of sentences) {
    const gold = goldEntities(s);
    entities.push(...gold);
    const sentence = s.tokens.join(' ');
    for (const [start, end] of candidateSpans(s.tokens)) {
      const match = gold.find((g) => g.start === start && g.end === end);
      const label = match ? NER_CHOICES[NER_TYPES.indexOf(match.type as (typeof NER_TYPES)[number])]! : 'none';
      docs.push({
        id: `${s.id}:${start}-${end}`,
        fields: { sentence, span: s.tokens.slice(start, end).join(' '), label, start: String(start), end: String(end) },
        gold: (NER_CHOICES as readonly string[]).indexOf(label),
        group: s.id,
      });
    }
  }
  return { docs, entities };
}

/** FIN NER: FIN5 is train, FIN3 is test (the published split). */
export async function loadNer(dataDir: string): Promise<TaskData> {
  const trainFile = path.join(dataDir, 'tasks', 'ner', 'FIN5.txt');
  const testFile = path.join(dataDir, 'tasks', 'ner', 'FIN3.txt');
  const trainS = parseConll(trainFile, await readTaskFile(trainFile), 'fin5');
  const testS = parseConll(testFile, await readTaskFile(testFile), 'fin3');
  const train = candidateDocs(trainS);
  const test = candidateDocs(testS);
  return {
    name: 'ner',
    splits: { train: train.docs, test: test.docs },
    texts: { train: trainS.map((s) => s.tokens.join(' ')), test: testS.map((s) => s.tokens.join(' ')) },
    entities: { train: train.entities, test: test.entities },
    files: [trainFile, testFile],
  };
}
