/**
 * A revision of this repository checked out beside it for a benchmark's "before" column: a git
 * worktree sharing this checkout's node_modules, kept for the next run. addon 'shared' links this
 * checkout's native build (the revision's TypeScript on today's engine); 'own' builds the
 * revision's addon in the worktree (its engine).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../src/util/paths.js';

export function checkoutBefore(revision: string, parent: string, addon: 'shared' | 'own'): { rev: string; tree: string } {
  const rev = execFileSync('git', ['rev-parse', '--short', revision], { cwd: ROOT, encoding: 'utf8' }).trim();
  const tree = path.join(parent, `before-${rev}`);
  if (!existsSync(tree)) {
    execFileSync('git', ['worktree', 'add', '--detach', '-f', tree, rev], { cwd: ROOT, stdio: 'ignore' });
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(tree, 'node_modules'));
    if (addon === 'shared') symlinkSync(path.join(ROOT, 'native', 'build'), path.join(tree, 'native', 'build'));
  }
  if (addon === 'own' && !existsSync(path.join(tree, 'native', 'build', 'Release', 'cpt_native.node'))) {
    process.stderr.write(`building the addon of ${rev} ...\n`);
    execFileSync(process.execPath, [path.join(ROOT, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'), 'rebuild', '--directory', path.join(tree, 'native')], { stdio: 'ignore', env: { ...process.env, JOBS: 'max' } });
  }
  return { rev, tree };
}
