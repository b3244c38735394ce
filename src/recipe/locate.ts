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
    const node = path.length === 0 ? doc.contents : doc.getIn(path, true);
    if (isNode(node) && node.range) return lineOf(node.range[0]);
    // A missing key: the line of the deepest key that exists along the path (`train:`), else line 1.
    for (let n = path.length - 1; n >= 1; n--) {
      const parent = doc.getIn(path.slice(0, n - 1), true) ?? (n === 1 ? doc.contents : undefined);
      const last = path[n - 1];
      if (isMap(parent)) {
        for (const item of parent.items) {
          if (isPair(item) && isScalar(item.key) && item.key.value === last && item.key.range) return lineOf(item.key.range[0]);
        }
      }
      if (typeof last === 'number') {
        const el = doc.getIn(path.slice(0, n), true);
        if (isNode(el) && el.range) return lineOf(el.range[0]);
      }
    }
    return 1;
  };
}
