/** One document of a corpus, as stored in the shards. */
export interface Doc {
  id: string;
  text: string;
  source: string;
}

/** Drop counts by reason (e.g. `no_body`, `bad_json`): every dropped record is counted. */
export type SkipCounts = Record<string, number>;
