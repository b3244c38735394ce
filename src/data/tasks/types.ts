/**
 * Task datasets shared by selection (TACP / ETS-DACP use the unlabeled text) and eval (scores
 * the labelled examples). One definition of every split lives here so both stages agree.
 */

export type TaskSplit = 'train' | 'test';

/** One labelled example. Fields are referenced by name from the task YAML templates (`{{text}}`). */
export interface TaskDoc {
  id: string;
  /** Scalar fields usable in templates. */
  fields: Record<string, string>;
  /** Per-document answer options (ARC, PIQA); tasks with fixed options list them in YAML. */
  choices?: string[];
  /** Index into the choices (per-doc or the YAML list) of the correct answer, or -1 if unlabeled. */
  gold?: number;
  /** Grouping key (NER: the sentence a candidate span belongs to; FiQA: the sentence). */
  group?: string;
}

/** A gold entity of an NER sentence: tokens [start, end) of sentence `group`. */
export interface GoldEntity {
  group: string;
  start: number;
  end: number;
  type: string;
}

export interface TaskData {
  name: string;
  /** Splits the source provides or that we cut deterministically; absent when the kit lacks one. */
  splits: Partial<Record<TaskSplit, TaskDoc[]>>;
  /** Unlabeled text of each split, one string per distinct source text (no duplicates). */
  texts: Partial<Record<TaskSplit, string[]>>;
  /** NER only: every gold entity of each split (for entity-level recall). */
  entities?: Partial<Record<TaskSplit, GoldEntity[]>>;
  /** Files read, for messages and results. */
  files: string[];
}
