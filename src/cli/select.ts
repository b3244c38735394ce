import type { Command } from 'commander';
import { UserError } from '../util/errors.js';

// Placeholder: replaced by the stage that owns this verb.
export function register(program: Command): void {
  program
    .command('select')
    .description('(not built yet)')
    .action(() => {
      throw new UserError('select is not built yet');
    });
}
