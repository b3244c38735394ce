import path from 'node:path';

/** Where `cpt prepare` puts a recipe's pile_test sources: a sibling of data.prepared_dir. */
export function pileTestDir(preparedDir: string): string {
  return path.join(path.dirname(preparedDir), `${path.basename(preparedDir)}.pile_test`);
}
