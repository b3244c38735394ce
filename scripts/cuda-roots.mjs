// Where a CUDA toolkit may be, in order: $CUDA_HOME, /usr/local/cuda, the one nvcc on PATH comes
// from, and NVIDIA's PyPI wheels (CUDA 13, laid out under site-packages/nvidia/cu13;
// native/cuda/requirements-build.txt). The native build looks for nvcc in them, npm run
// sass:cuda for cuobjdump and nvdisasm.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export function cudaRoots() {
  const roots = [process.env.CUDA_HOME, '/usr/local/cuda'].filter(Boolean);
  const onPath = spawnSync('sh', ['-c', 'command -v nvcc'], { encoding: 'utf8' });
  if (onPath.status === 0 && onPath.stdout.trim()) roots.push(path.dirname(path.dirname(fs.realpathSync(onPath.stdout.trim()))));
  const py = spawnSync('python3', ['-c', 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13"))'], { encoding: 'utf8' });
  if (py.status === 0 && py.stdout.trim()) roots.push(py.stdout.trim());
  return roots;
}
