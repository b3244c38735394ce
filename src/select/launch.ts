/**
 * Launchers for scoring on the schedulers clusters already run, as files a person can read and
 * submit: Slurm (a job array of workers between a prepare job and a merge job, chained by
 * afterok dependencies) and Kubernetes (an Indexed Job of workers between a prepare Job and a
 * merge Job). Both assume a shared filesystem mounted at the same path on every node, holding
 * the cpt checkout (with its checkpoints directory) and the data directory.
 */
import path from 'node:path';
import { promises as fs } from 'node:fs';
import { stringify } from 'yaml';
// Types only (erased at run time): property names and value types of the Jobs are checked by tsc.
import type { IJob } from 'kubernetes-models/batch/v1/Job';
import type { IJobSpec } from 'kubernetes-models/batch/v1/JobSpec';
import type { Recipe } from '../recipe/types.js';
import { ROOT, dataDir } from '../util/paths.js';
import { writeFileAtomic } from '../util/atomic.js';
import { UserError } from '../util/errors.js';

export interface LaunchOptions {
  workers: number;
  /** Node binary on the nodes (default: this one, on the shared filesystem or the same image). */
  node?: string;
  /** Kubernetes: container image with Node 20 (the checkout comes from the shared volume). */
  image?: string;
  /** Kubernetes: PersistentVolumeClaim of the shared filesystem. */
  pvc?: string;
}

export interface Launch {
  dir: string;
  files: string[];
  /** The command that submits everything. */
  submit: string;
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
/** A name Slurm and Kubernetes both accept (RFC 1123 label, at most 40 characters). */
const jobName = (r: Recipe) => `cpt-${r.name.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '')}`.slice(0, 40).replace(/-+$/, '');

/** The node to run: `o.node`, else (Slurm) $CPT_NODE or the node on the compute node's PATH. */
function cptCommand(r: Recipe, o: LaunchOptions, args: string): string {
  return `${o.node ? q(o.node) : '"${CPT_NODE:-node}"'} ${q(path.join(ROOT, 'scripts', 'cpt.mjs'))} ${args.replace('RECIPE', q(r.file))}`;
}

export function launchDir(r: Recipe): string {
  return path.join(r.run_dir, 'launch');
}

export async function emitSlurm(r: Recipe, o: LaunchOptions): Promise<Launch> {
  const dir = launchDir(r), logs = path.join(dir, 'logs'), name = jobName(r);
  await fs.mkdir(logs, { recursive: true });
  const cpus = r.engine.threads || 4;
  const header = (what: string, extra: string[] = []) => [
    '#!/bin/bash',
    `#SBATCH --job-name=${name}-${what}`,
    `#SBATCH --output="${path.join(logs, `%x-%${what === 'workers' ? 'A_%a' : 'j'}.out`)}"`,
    `#SBATCH --cpus-per-task=${cpus}`,
    '##SBATCH --time=04:00:00   # your site\'s limit: remove one # and set it',
    ...extra,
    `# Written by cpt select --emit slurm for ${r.file}; the shared filesystem holds ${ROOT}.`,
    'set -euo pipefail',
    `cd ${q(ROOT)}`,
    `export CPT_DATA=${q(dataDir())}`,
  ];
  const files: Record<string, string> = {
    'select-prepare.sbatch': [...header('prepare'), cptCommand(r, o, 'prepare RECIPE')].join('\n'),
    'select-workers.sbatch': [...header('workers', [`#SBATCH --array=0-${o.workers - 1}`]),
      '# Resubmit a failed or killed task K alone (sbatch --array=K this file): its finished shards are skipped.',
      cptCommand(r, o, `select RECIPE --worker "$SLURM_ARRAY_TASK_ID/${o.workers}"`)].join('\n'),
    'select-merge.sbatch': [...header('merge'), cptCommand(r, o, 'select RECIPE')].join('\n'),
    'submit-slurm.sh': [
      '#!/bin/bash',
      '# Prepare once, then the worker array, then the merge. The merge waits for the array to end',
      '# however its tasks ended (afterany): it scores any shard a failed task left, so a task',
      '# resubmitted alone (sbatch --array=K) never leaves the merge waiting forever.',
      'set -euo pipefail',
      `cd ${q(dir)}`,
      'prepare=$(sbatch --parsable select-prepare.sbatch)',
      'workers=$(sbatch --parsable --dependency=afterok:$prepare select-workers.sbatch)',
      'merge=$(sbatch --parsable --dependency=afterany:$workers select-merge.sbatch)',
      'echo "submitted: prepare $prepare, workers $workers, merge $merge"',
    ].join('\n'),
  };
  for (const [f, text] of Object.entries(files)) {
    await writeFileAtomic(path.join(dir, f), text + '\n');
    await fs.chmod(path.join(dir, f), 0o755);
  }
  return { dir, files: Object.keys(files).map((f) => path.join(dir, f)), submit: `bash ${q(path.join(dir, 'submit-slurm.sh'))}` };
}

/** The deepest directory holding both the checkout and the data: where the shared volume is mounted. */
function sharedMount(): string {
  const a = ROOT.split(path.sep), b = dataDir().split(path.sep);
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return a.slice(0, i).join(path.sep) || path.sep;
}

/** Every absolute path in the resolved recipe, by its key ("run_dir", "data.corpus[0].path", ...). */
function recipePaths(x: unknown, key = ''): [string, string][] {
  if (typeof x === 'string') return path.isAbsolute(x) ? [[key, x]] : [];
  if (Array.isArray(x)) return x.flatMap((v, i) => recipePaths(v, `${key}[${i}]`));
  if (x && typeof x === 'object') return Object.entries(x).flatMap(([k, v]) => recipePaths(v, key ? `${key}.${k}` : k));
  return [];
}

/**
 * Pods see only the shared volume: every path the job touches (the recipe's file and every path
 * in it, the checkout, the data kit) must lie under its mount, or the work would land on a pod's
 * own disk and vanish. Refused with the keys that are outside.
 */
function checkMounted(r: Recipe, mount: string): void {
  const inside = (p: string) => p === mount || p.startsWith(mount.endsWith(path.sep) ? mount : mount + path.sep);
  const out = recipePaths(r).filter(([, p]) => !inside(path.resolve(p)));
  if (!out.length) return;
  const shown = out.slice(0, 3).map(([k, p]) => `${k} ${p}`).join(', ') + (out.length > 3 ? ` and ${out.length - 3} more` : '');
  throw new UserError(`--emit k8s: ${shown} ${out.length > 1 ? 'are' : 'is'} outside the shared volume mounted at ${mount} (the directory holding the checkout and the data kit); every path the job touches must be on it`);
}

/** The three Kubernetes Jobs as plain objects (batch/v1). */
export function k8sJobs(r: Recipe, o: LaunchOptions): { prepare: IJob; workers: IJob; merge: IJob } {
  checkMounted(r, sharedMount());
  // Kubernetes' own rules, checked here rather than by the API server at submission (B11).
  if (o.pvc !== undefined && !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(o.pvc)) throw new UserError(`--pvc: "${o.pvc}" is not a valid PersistentVolumeClaim name (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253)`);
  if (o.image !== undefined && (!o.image || /\s/.test(o.image) || /[A-Z]/.test(o.image.split('/').slice(-1)[0].split(':')[0]))) throw new UserError(`--image: "${o.image}" is not a valid container image reference`);
  const name = jobName(r);
  const job = (what: string, command: string, spec: Omit<IJobSpec, 'template'> = {}): IJob => ({
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: `${name}-${what}`, labels: { 'app.kubernetes.io/name': 'cpt', 'cpt/recipe': name } },
    spec: {
      ...spec,
      template: {
        spec: {
          restartPolicy: 'Never',
          containers: [{
            name: what,
            image: o.image ?? 'node:20-bookworm',
            workingDir: ROOT,
            command: ['/bin/sh', '-c', command],
            env: [{ name: 'CPT_DATA', value: dataDir() }],
            resources: { requests: { cpu: String(r.engine.threads || 1) } },
            volumeMounts: [{ name: 'shared', mountPath: sharedMount() }],
          }],
          volumes: [{ name: 'shared', persistentVolumeClaim: { claimName: o.pvc ?? 'cpt-shared' } }],
        },
      },
    },
  });
  const node = { ...o, node: o.node ?? 'node' };
  return {
    prepare: job('prepare', cptCommand(r, node, 'prepare RECIPE'), { backoffLimit: 2 }),
    // One pod per index; a failed index is retried alone (finished shards are skipped on rerun).
    workers: job('workers', cptCommand(r, node, `select RECIPE --worker "$JOB_COMPLETION_INDEX/${o.workers}"`), {
      completionMode: 'Indexed', completions: o.workers, parallelism: o.workers, backoffLimitPerIndex: 2, maxFailedIndexes: 0,
    }),
    merge: job('merge', cptCommand(r, node, 'select RECIPE'), { backoffLimit: 2 }),
  };
}

export async function emitK8s(r: Recipe, o: LaunchOptions): Promise<Launch> {
  const dir = launchDir(r);
  await fs.mkdir(dir, { recursive: true });
  const jobs = k8sJobs(r, o);
  const files: string[] = [];
  for (const [what, j] of Object.entries(jobs)) {
    const f = path.join(dir, `select-${what}.k8s.yaml`);
    await writeFileAtomic(f, `# Written by cpt select --emit k8s for ${r.file}\n${stringify(j, { lineWidth: 0 })}`);
    files.push(f);
  }
  const names = Object.values(jobs).map((j) => j.metadata!.name!);
  const submit = path.join(dir, 'submit-k8s.sh');
  await writeFileAtomic(submit, [
    '#!/bin/bash',
    '# Prepare once, then the Indexed Job of workers, then the merge, each after the previous one',
    '# completed. A rerun replaces the Jobs of an earlier one (finished shards are kept on the',
    '# volume); a Job that fails stops the script with its name instead of waiting for ever.',
    'set -euo pipefail',
    `cd ${q(dir)}`,
    'run() {  # FILE JOB: (re)start the Job, then wait until it completes or fails',
    '  kubectl delete job "$2" --ignore-not-found --wait=true',
    '  kubectl apply -f "$1"',
    '  while :; do',
    '    s=$(kubectl get job "$2" -o jsonpath=\'{.status.conditions[?(@.status=="True")].type}\')',
    '    case " $s " in *" Complete "*) return 0 ;; *" Failed "*) echo "job $2 failed: kubectl describe job $2" >&2; return 1 ;; esac',
    '    sleep 10',
    '  done',
    '}',
    ...['prepare', 'workers', 'merge'].map((w, i) => `run select-${w}.k8s.yaml ${names[i]}`),
  ].join('\n') + '\n');
  await fs.chmod(submit, 0o755);
  return { dir, files: [...files, submit], submit: `bash ${q(submit)}` };
}
