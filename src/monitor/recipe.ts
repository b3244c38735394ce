/** The recipe's `monitor:` section: Fin-test, Pile-test and task-test losses during training. */
import { z } from 'zod';
import { doc, nonNegInt, posInt } from '../recipe/keys.js';

export const MonitorSchema = z.strictObject({
  every: doc(posInt.default(100), 'Evaluate every this many steps.'),
  // 512 × 2048 tokens each: both evaluations cost ~1/3 of one training step, every 100 steps.
  fin_test_tokens: doc(nonNegInt.default(1_048_576), 'Tokens of the Fin-test split evaluated each time.'),
  pile_test_tokens: doc(nonNegInt.default(1_048_576), 'Tokens of the Pile-test text evaluated each time.'),
  // Off unless asked for: the task texts are short, so each monitor step scores them one by one.
  task_test_tokens: doc(nonNegInt.default(0), "Task-test loss: tokens of the tasks' test-split text scored each time, the measure of the paper's question (does the selection help the tasks?); 0 turns it off."),
});

export type MonitorConfig = z.output<typeof MonitorSchema>;
