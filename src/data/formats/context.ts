import type { SourceSpec } from '../../recipe/types.js';
import { UserError } from '../../util/errors.js';
import type { SkipCounts } from '../doc.js';

/** What a format reader gets besides the spec: where to count drops and report bad input. */
export class ReadContext {
  readonly skipped: SkipCounts = {};
  /** Raw input bytes consumed so far (for progress). */
  bytesRead = 0;
  constructor(readonly spec: SourceSpec) {}

  /** A record dropped by design (e.g. a Reuters story with no body): always counted, never an error. */
  drop(reason: string): void {
    this.skipped[reason] = (this.skipped[reason] ?? 0) + 1;
  }

  /** Bad input: an error naming the place, or (skip_bad) a counted skip. */
  bad(reason: string, where: string, message: string): void {
    if (!this.spec.skip_bad) throw new UserError(`${where}: ${message} (source "${this.spec.name}"; set skip_bad to skip such records)`);
    this.drop(reason);
  }
}
