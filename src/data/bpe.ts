/**
 * Byte-level BPE for HF `tokenizers` JSON files of the GPT-2 / GPT-NeoX family
 * (NFC normalizer, ByteLevel pre-tokenizer without prefix space, BPE model, added tokens).
 * Pure and synchronous so it runs the same on the main thread and in workers.
 */
import { UserError } from '../util/errors.js';

interface AddedToken {
  id: number;
  content: string;
  special: boolean;
  normalized: boolean;
}

export interface TokenizerJson {
  added_tokens?: AddedToken[];
  normalizer?: { type: string } | null;
  pre_tokenizer?: { type: string; add_prefix_space?: boolean; use_regex?: boolean } | null;
  model: { type: string; vocab: Record<string, number>; merges: (string | [string, string])[] };
}

/** GPT-2's pre-tokenization regex, as used by HF's ByteLevel pre-tokenizer. */
const PRETOKENIZE = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
// eslint-disable-next-line no-control-regex
const NON_ASCII = /[^\x00-\x7f]/;

/** GPT-2 bytes_to_unicode: every byte maps to a printable code point. */
function byteToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const out = new Array<string>(256);
  bs.forEach((b, i) => (out[b] = String.fromCodePoint(cs[i])));
  return out;
}

/** A matcher for one set of added tokens: leftmost-longest, as HF's AddedVocabulary. */
class AddedMatcher {
  private readonly re: RegExp | null;
  private readonly ids = new Map<string, number>();
  constructor(tokens: AddedToken[]) {
    for (const t of tokens) this.ids.set(t.content, t.id);
    // Alternation tries longer contents first, which gives leftmost-longest.
    const alts = [...this.ids.keys()].sort((a, b) => b.length - a.length).map(escapeRe);
    this.re = alts.length ? new RegExp(alts.join('|'), 'g') : null;
  }
  /** Calls `text(piece)` for plain text and `token(id)` for each added token, in order. */
  split(s: string, text: (piece: string) => void, token: (id: number) => void): void {
    if (!this.re || s.length === 0) {
      if (s.length) text(s);
      return;
    }
    this.re.lastIndex = 0;
    let last = 0;
    for (let m = this.re.exec(s); m; m = this.re.exec(s)) {
      if (m.index > last) text(s.slice(last, m.index));
      token(this.ids.get(m[0])!);
      last = m.index + m[0].length;
    }
    if (last < s.length) text(s.slice(last));
  }
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const MAX_CACHE = 500_000;
/** Words with more byte symbols than this use the O(n log n) heap merge. */
const LONG_WORD = 48;

export class BytePairEncoder {
  readonly vocabSize: number;
  private readonly vocab: Map<string, number>;
  private readonly idToToken: string[];
  private readonly specialIds = new Set<number>();
  /** (left id, right id) → rank * 2^20 + merged id, keyed by left * 2^20 + right. */
  private readonly merges = new Map<number, number>();
  private readonly byteChar = byteToUnicode();
  private readonly charByte = new Map<string, number>();
  private readonly byteId = new Int32Array(256);
  private readonly raw: AddedMatcher;
  private readonly normalized: AddedMatcher;
  private readonly nfc: boolean;
  private cache = new Map<string, number[]>();
  private readonly decoder = new TextDecoder('utf-8');

  constructor(json: TokenizerJson, source = 'tokenizer.json') {
    const m = json.model;
    if (!m || m.type !== 'BPE' || typeof m.vocab !== 'object' || !Array.isArray(m.merges)) {
      throw new UserError(`${source}: expected a BPE model with vocab and merges (model.type = "BPE")`);
    }
    const pre = json.pre_tokenizer;
    if (!pre || pre.type !== 'ByteLevel' || pre.add_prefix_space || pre.use_regex === false) {
      throw new UserError(`${source}: expected pre_tokenizer ByteLevel with add_prefix_space false (GPT-NeoX style)`);
    }
    if (json.normalizer && json.normalizer.type !== 'NFC') {
      throw new UserError(`${source}: normalizer ${json.normalizer.type} is not supported (expected NFC or none)`);
    }
    this.nfc = json.normalizer?.type === 'NFC';
    this.vocab = new Map(Object.entries(m.vocab));
    const added = json.added_tokens ?? [];
    let maxId = -1;
    for (const id of this.vocab.values()) maxId = Math.max(maxId, id);
    for (const t of added) maxId = Math.max(maxId, t.id);
    this.vocabSize = maxId + 1;
    this.idToToken = new Array<string>(this.vocabSize);
    for (const [tok, id] of this.vocab) this.idToToken[id] = tok;
    for (const t of added) {
      this.idToToken[t.id] = t.content;
      if (t.special) this.specialIds.add(t.id);
    }
    this.raw = new AddedMatcher(added.filter((t) => !t.normalized));
    this.normalized = new AddedMatcher(added.filter((t) => t.normalized));
    for (let b = 0; b < 256; b++) {
      const c = this.byteChar[b];
      this.charByte.set(c, b);
      // Bytes that never occur in UTF-8 (0xC0, 0xC1, 0xF5..) may be absent from the vocab.
      this.byteId[b] = this.vocab.get(c) ?? -1;
    }
    m.merges.forEach((mg, rank) => {
      const [a, b] = typeof mg === 'string' ? splitMerge(mg) : mg;
      const ia = this.vocab.get(a);
      const ib = this.vocab.get(b);
      const im = this.vocab.get(a + b);
      if (ia === undefined || ib === undefined || im === undefined) {
        throw new UserError(`${source}: merge ${rank} ("${a} ${b}") names a token missing from the vocab`);
      }
      const key = ia * 1048576 + ib;
      if (!this.merges.has(key)) this.merges.set(key, rank * 1048576 + im);
    });
  }

  encode(text: string): Int32Array {
    const out: number[] = [];
    const push = (id: number) => out.push(id);
    this.raw.split(
      text,
      (piece) => {
        const norm = this.nfc && NON_ASCII.test(piece) ? piece.normalize('NFC') : piece;
        this.normalized.split(norm, (p) => this.encodePlain(p, out), push);
      },
      push,
    );
    return Int32Array.from(out);
  }

  /** Pre-tokenize and BPE a piece that holds no added tokens. */
  private encodePlain(s: string, out: number[]): void {
    PRETOKENIZE.lastIndex = 0;
    for (let m = PRETOKENIZE.exec(s); m; m = PRETOKENIZE.exec(s)) {
      const word = m[0];
      let ids = this.cache.get(word);
      if (ids === undefined) {
        ids = this.bpe(word);
        if (this.cache.size >= MAX_CACHE) this.cache = new Map();
        this.cache.set(word, ids);
      }
      for (let i = 0; i < ids.length; i++) out.push(ids[i]);
    }
  }

  /** BPE of one pre-token: repeatedly merge the lowest-ranked adjacent pair. */
  private bpe(word: string): number[] {
    const bytes = Buffer.from(word, 'utf8');
    const sym: number[] = new Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) sym[i] = this.byteId[bytes[i]];
    return sym.length > LONG_WORD ? this.bpeLong(sym) : this.bpeShort(sym);
  }

  /** Short words: rescan all pairs per merge (fastest for the usual few symbols). */
  private bpeShort(sym: number[]): number[] {
    while (sym.length > 1) {
      let best = Infinity;
      for (let i = 0; i + 1 < sym.length; i++) {
        const v = this.merges.get(sym[i] * 1048576 + sym[i + 1]);
        if (v !== undefined && v < best) best = v;
      }
      if (best === Infinity) break;
      const merged = best % 1048576;
      const next: number[] = [];
      for (let i = 0; i < sym.length; i++) {
        if (i + 1 < sym.length && this.merges.get(sym[i] * 1048576 + sym[i + 1]) === best) {
          next.push(merged);
          i++;
        } else next.push(sym[i]);
      }
      sym = next;
    }
    return sym;
  }

  /**
   * Long words (e.g. a base64 blob with no spaces): a linked list and a min-heap of candidate
   * merges keyed by (rank, position), as HF's Word::merge_all, so the cost is O(n log n).
   */
  private bpeLong(init: number[]): number[] {
    const n = init.length;
    const id = Int32Array.from(init);
    const prev = new Int32Array(n);
    const next = new Int32Array(n);
    const alive = new Uint8Array(n).fill(1);
    for (let i = 0; i < n; i++) {
      prev[i] = i - 1;
      next[i] = i + 1 < n ? i + 1 : -1;
    }
    // Heap entries: rank-and-merged value (v) and left position; ordered by v's rank, then position.
    const heapV: number[] = [];
    const heapP: number[] = [];
    const less = (a: number, b: number) => {
      const ra = Math.floor(heapV[a] / 1048576);
      const rb = Math.floor(heapV[b] / 1048576);
      return ra < rb || (ra === rb && heapP[a] < heapP[b]);
    };
    const swap = (a: number, b: number) => {
      [heapV[a], heapV[b]] = [heapV[b], heapV[a]];
      [heapP[a], heapP[b]] = [heapP[b], heapP[a]];
    };
    const push = (v: number, p: number) => {
      heapV.push(v);
      heapP.push(p);
      for (let i = heapV.length - 1; i > 0; ) {
        const parent = (i - 1) >> 1;
        if (!less(i, parent)) break;
        swap(i, parent);
        i = parent;
      }
    };
    const pop = () => {
      const last = heapV.length - 1;
      swap(0, last);
      const v = heapV.pop()!;
      const p = heapP.pop()!;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heapV.length && less(l, m)) m = l;
        if (r < heapV.length && less(r, m)) m = r;
        if (m === i) break;
        swap(i, m);
        i = m;
      }
      return [v, p] as const;
    };
    const candidate = (p: number) => {
      const q = next[p];
      if (q < 0) return;
      const v = this.merges.get(id[p] * 1048576 + id[q]);
      if (v !== undefined) push(v, p);
    };
    for (let i = 0; i + 1 < n; i++) candidate(i);
    while (heapV.length) {
      const [v, p] = pop();
      const q = next[p];
      // Stale entry: the left symbol was merged away, or the pair no longer forms this merge.
      if (!alive[p] || q < 0 || this.merges.get(id[p] * 1048576 + id[q]) !== v) continue;
      id[p] = v % 1048576;
      alive[q] = 0;
      next[p] = next[q];
      if (next[q] >= 0) prev[next[q]] = p;
      if (prev[p] >= 0) candidate(prev[p]);
      candidate(p);
    }
    const out: number[] = [];
    for (let i = 0; i >= 0; i = next[i]) out.push(id[i]);
    return out;
  }

  decode(ids: ArrayLike<number>, skipSpecial = false): string {
    const parts: Uint8Array[] = [];
    let bytes: number[] = [];
    const flush = () => {
      if (bytes.length) parts.push(Uint8Array.from(bytes));
      bytes = [];
    };
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      const tok = this.idToToken[id];
      if (tok === undefined) throw new UserError(`decode: token id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`);
      if (this.vocab.get(tok) === id) {
        for (const ch of tok) bytes.push(this.charByte.get(ch) ?? 0x3f);
      } else {
        if (skipSpecial && this.specialIds.has(id)) continue;
        flush();
        parts.push(Buffer.from(tok, 'utf8'));
      }
    }
    flush();
    return this.decoder.decode(Buffer.concat(parts));
  }

  idOf(token: string): number | undefined {
    return this.vocab.get(token);
  }
}

function splitMerge(m: string): [string, string] {
  const i = m.indexOf(' ', 1);
  return [m.slice(0, i), m.slice(i + 1)];
}
