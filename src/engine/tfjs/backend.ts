/**
 * tfjs backend selection, once per process: `@tensorflow/tfjs-node-gpu` (TensorFlow C library,
 * CUDA) when it is installed, else the pure-JS `cpu` backend.
 */
import * as tf from '@tensorflow/tfjs';

export type TF = typeof tf;

let ready: Promise<string> | undefined;

/** Resolves to the engine name: "tfjs-tensorflow" or "tfjs-cpu". */
export function initBackend(log: (msg: string) => void = (m) => process.stderr.write(m + '\n')): Promise<string> {
  ready ??= (async () => {
    // Silences tfjs's "install the node backend" banner; we say which backend runs ourselves.
    tf.enableProdMode();
    let why = '';
    try {
      const pkg = '@tensorflow/tfjs-node-gpu'; // optional dependency: absent on most machines
      await import(pkg);
      if (await tf.setBackend('tensorflow')) {
        await tf.ready();
        log('tfjs engine: backend tensorflow (tfjs-node-gpu, CUDA when available)');
        return 'tfjs-tensorflow';
      }
      why = 'its backend did not initialise';
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      why = code === 'ERR_MODULE_NOT_FOUND' ? 'not installed' : `not usable: ${String((e as Error).message ?? e).split('\n')[0]}`;
    }
    await tf.setBackend('cpu');
    await tf.ready();
    log(`tfjs engine: backend cpu (pure JS, slow; @tensorflow/tfjs-node-gpu ${why})`);
    return 'tfjs-cpu';
  })();
  return ready;
}

export { tf };
