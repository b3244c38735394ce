// Starts a TypeScript worker under tsx: registering tsx's loader inside the worker is the one way
// that works under `tsx`, `node --import tsx` and vitest alike (inherited --import flags are not
// applied before a worker's entry module is resolved).
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
