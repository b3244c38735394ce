/** `recipe.resolved.yaml`: the recipe exactly as a run used it, every default written out. */
import { Document, isScalar, isSeq, visit } from 'yaml';
import { recipeHash } from './resume.js';
import type { Recipe } from './types.js';

export function toYaml(r: Recipe): string {
  const { file, ...rest } = r;
  const doc = new Document(rest, { aliasDuplicateObjects: false });
  // Lists of plain values on one line (`tasks: [fpb, ner]`), as a person would write them.
  visit(doc, { Seq: (_, node) => void (isSeq(node) && node.items.every(isScalar) && (node.flow = true)) });
  const header = `# Resolved from ${file}; every default filled in, paths absolute.\n# resume hash: ${recipeHash(r)}\n`;
  return header + doc.toString({ lineWidth: 0, flowCollectionPadding: false });
}
