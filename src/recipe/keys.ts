/**
 * The pieces every recipe section is written with: documented keys, optional sections, lists. A
 * leaf (zod only), so a stage's section schema can import it without pulling in anything else.
 */
import { z } from 'zod';

export const posNum = z.number().positive();
export const posInt = z.number().int().positive();
export const nonNegInt = z.number().int().nonnegative();
export const str = z.string().min(1);

/**
 * An optional section with its keys' defaults filled when absent; an empty one (`monitor:` with
 * every key commented out, which YAML reads as null) counts as absent.
 */
export const section = <T extends z.ZodType>(inner: T) => z.preprocess((v) => (v === null ? undefined : v), inner.prefault({} as z.input<T>));

/** A list, or a single item written on its own. */
export const listOf = <T extends z.ZodType>(item: T) => z.preprocess((v) => (typeof v === 'string' ? [v] : v), z.array(item));

/**
 * What a key means, for the comments of every shipped recipe, docs/recipe-keys.md and `cpt inspect
 * --explain` (recipe/comments.ts): a description, and where the schema cannot say it (a default
 * computed from other keys), the type and default as they read.
 */
export interface KeyDoc {
  description: string;
  type?: string;
  default?: string;
}
export const doc = <T extends z.ZodType>(t: T, description: string, o: Omit<KeyDoc, 'description'> = {}): T => t.meta({ description, ...o });

/** A section's type after resolution: the keys whose defaults resolve computes (`K`) are set. */
export type Settled<T, K extends keyof T> = Omit<T, K> & { [P in K]-?: Exclude<T[P], undefined> };
