import { Command } from 'commander';
// Inlined by the bundler too (dist/cpt has no package.json beside it).
import pkg from '../../package.json' with { type: 'json' };
import { UserError } from '../util/errors.js';
import * as prepare from './prepare.js';
import * as select from './select.js';
import * as train from './train.js';
import * as evaluate from './eval.js';
import * as plot from './plot.js';
import * as inspect from './inspect.js';
import * as score from './score.js';
import * as exporter from './export.js';
import * as report from './report.js';

const program = new Command('cpt')
  .description('Continual pre-training of Pythia (GPT-NeoX) models on a selected domain corpus')
  .version(pkg.version, '-V, --version')
  .option('--debug', 'print stack traces for every error')
  .option('--data-dir <dir>', 'data kit directory (default $CPT_DATA, else ../shared/data)')
  .hook('preAction', (cmd) => {
    const dir = cmd.opts().dataDir as string | undefined;
    if (dir) process.env.CPT_DATA = dir;
  });

for (const verb of [prepare, select, train, evaluate, plot, report, inspect, score, exporter]) verb.register(program);

const debug = process.argv.includes('--debug');
/** File-system refusals the user can fix (read-only, no permission, missing): one line naming the path. */
const FS_CODES: Record<string, string> = { EROFS: 'read-only file system', EACCES: 'permission denied', EPERM: 'operation not permitted', ENOENT: 'no such file or directory', ENOSPC: 'no space left on device' };

program.parseAsync(process.argv).catch((e: unknown) => {
  const fsErr = e as NodeJS.ErrnoException;
  if (e instanceof UserError && !debug) {
    process.stderr.write(`cpt: ${e.message}\n`);
  } else if (!debug && fsErr?.code && FS_CODES[fsErr.code] && fsErr.path) {
    process.stderr.write(`cpt: ${fsErr.path}: ${FS_CODES[fsErr.code]} (${fsErr.syscall ?? 'access'})\n`);
  } else {
    process.stderr.write(`cpt: ${e instanceof Error ? (debug ? e.stack : e.message) : String(e)}\n`);
    if (!debug) process.stderr.write('cpt: (internal error; rerun with --debug for the stack trace)\n');
  }
  process.exit(1);
});
