/** The recipe's `data:` section: the domain corpus, the general-domain held-out text, the tasks and the tokenizer. */
import { z } from 'zod';
import { doc, listOf, posNum, str, type Settled } from '../recipe/keys.js';
import { FIELD_FORMATS, FORMATS } from './formats/index.js';
import { FIN_TASKS } from './tasks/index.js';

export const SourceSchema = z.strictObject({
  name: str.optional(),
  path: str,
  format: z.enum(FORMATS),
  fields: listOf(str).default([]),
  id_field: str.optional(),
  separator: str.optional(),
  delimiter: z.string().length(1).optional(),
  include: str.optional(),
  encoding: z.enum(['utf-8', 'latin1']).optional(),
  skip_bad: z.boolean().default(false),
}).superRefine((s, ctx) => {
  // Format-specific keys, checked with the schema so they are reported with every other problem.
  const takesFields = FIELD_FORMATS.has(s.format);
  const fieldFormats = [...FIELD_FORMATS].join(', ').replace(/, (?=[^,]*$)/, ' or ');
  if (takesFields && !s.fields.length) ctx.addIssue({ code: 'custom', path: ['fields'], message: `required for format ${s.format}: the field(s) holding the text, e.g. [text]` });
  if (!takesFields) {
    if (s.fields.length) ctx.addIssue({ code: 'custom', path: ['fields'], message: `only for formats ${fieldFormats} (format is ${s.format})` });
    if (s.id_field !== undefined) ctx.addIssue({ code: 'custom', path: ['id_field'], message: `only for formats ${fieldFormats} (format is ${s.format})` });
  }
  if (s.separator !== undefined) {
    if (s.format !== 'text') ctx.addIssue({ code: 'custom', path: ['separator'], message: `only for format text (format is ${s.format})` });
    else {
      try {
        new RegExp(s.separator);
      } catch (e) {
        ctx.addIssue({ code: 'custom', path: ['separator'], message: `expected a regular expression (${(e as Error).message})` });
      }
    }
  }
  if (s.delimiter !== undefined && s.format !== 'csv') ctx.addIssue({ code: 'custom', path: ['delimiter'], message: `only for format csv (format is ${s.format})` });
});

/** Inside the data kit (`${CPT_DATA}`): the GPT-NeoX-20B tokenizer Pythia uses. */
export const KIT_TOKENIZER = 'tokenizer/20B_tokenizer.json';

export const DataSchema = z.strictObject({
  corpus: doc(z.array(SourceSchema).min(1), 'Domain corpus: raw inputs that `cpt prepare` turns into shards. Each source: path (file or directory, walked recursively and sorted), format (reuters-sgml | wikiextractor | jsonl | json | text | csv), name (default: last path component), include (glob on the file name), fields (json/jsonl/csv: field(s) holding the text; several → one doc per field), id_field, separator (text: regex, default blank lines), delimiter (csv), encoding (utf-8 | latin1; default latin1 for reuters-sgml, else utf-8), skip_bad (default false).', { type: 'list of sources' }),
  pile_test: doc(z.array(SourceSchema).default([]), 'General-domain held-out text for the Pile-test loss (forgetting).', { type: 'list of sources', default: '[]' }),
  tasks: doc(listOf(z.enum(FIN_TASKS)).default([...FIN_TASKS]), 'Tasks whose train-split text defines the target for tacp / ets-dacp / ets-dacp-com, and which `cpt eval` scores.'),
  prepared_dir: doc(str.optional(), 'Prepared shards, shared by every recipe with the same corpus, pile_test and tokenizer.', { type: 'path', default: 'checkpoints/data/<source names>-<hash of sources and tokenizer>' }),
  shard_mb: doc(posNum.default(64), 'Shard size in MB.'),
  // FinPythia holds out a small slice of the domain corpus as Fin-test.
  fin_test_fraction: doc(z.number().positive().lt(1).default(0.001), 'Fraction of domain documents held out as Fin-test, by a stable hash of the document id.', { type: 'float in (0, 1)' }),
  tokenizer: doc(str.optional(), 'GPT-NeoX-20B tokenizer used by Pythia.', { type: 'path', default: `\${CPT_DATA}/${KIT_TOKENIZER}` }),
});

/** One raw input of `cpt prepare`: a file or a directory (walked recursively, sorted); name and encoding settled. */
export type SourceSpec = Settled<z.output<typeof SourceSchema>, 'name' | 'encoding'>;
export type DataConfig = Settled<Omit<z.output<typeof DataSchema>, 'corpus' | 'pile_test'>, 'prepared_dir' | 'tokenizer'> & { corpus: SourceSpec[]; pile_test: SourceSpec[] };
