/** Map a recipe key path to its line in the YAML source, so every problem can name `file:line`. */
import { isMap, isNode, isPair, isScalar, type Document, type LineCounter } from 'yaml';
import type { KeyPath } from './problems.js';

export type Locator = (path: KeyPath, key?: string) => number | undefined;

export function makeLocator(doc: Document, lines: LineCounter): Locator {
  const lineOf = (offset: number) => lines.linePos(offset).line;
  return (path, key) => {
    if (key !== undefined) {
      // An unknown key: the line of the key itself.
      const parent = doc.getIn(path.slice(0, -1), true);
      if (isMap(parent)) {
        for (const item of parent.items) {
          if (isPair(item) && isScalar(item.key) && String(item.key.value) === key && item.key.range) return lineOf(item.key.range[0]);
        }
      }
    }
    // The deepest node that exists along the path: a missing key is reported at its parent mapping.
    for (let n = path.length; n >= 0; n--) {
      const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
      if (isNode(node) && node.range) return lineOf(node.range[0]);
    }
    return undefined;
  };
}
