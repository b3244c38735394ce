import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readDocs, readManifest } from '../../src/data/index.js';
import { ROOT } from '../../src/util/paths.js';
import { KIT } from './kit.js';

const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cpt-cli-'));
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

function cpt(...args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), ...args], { encoding: 'utf8', cwd: ROOT, timeout: 60_000 });
}

describe('cpt prepare', () => {
  it('ad-hoc: 10-K sections into shards, summary printed; second run is up to date; --verify', async () => {
    const out = path.join(tmp, '10k');
    const args = ['prepare', '--input', path.join(KIT, 'corpus/fin/sec10k_2023'), '--format', 'json', '--field', 'item1', '--field', 'item7a', '--out', out, '--shard-mb', '1'];
    const r = cpt(...args);
    expect(r.stderr).not.toMatch(/Error|cpt:/);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/74 docs/);
    expect(r.stdout).toMatch(/skipped: none/);
    const again = cpt(...args);
    expect(again.stdout).toMatch(/up to date/);

    // --verify: every shard checked against the manifest; a flipped byte is named, a cut shard is refused on read.
    const ok = cpt('prepare', '--verify', '--out', out);
    expect(ok.status).toBe(0);
    const m = await readManifest(out);
    expect(m.shards.length).toBeGreaterThan(1);
    expect(ok.stdout.trim().split('\n').filter((l) => l.startsWith('ok '))).toHaveLength(m.shards.length);
    const [first, second] = m.shards.map((s) => path.join(out, s.file));
    const bytes = await fs.readFile(first);
    bytes[bytes.length >> 1] ^= 0xff;
    await fs.writeFile(first, bytes);
    const bad = cpt('prepare', '--verify', '--out', out);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toContain(`BAD ${first}: sha256`);
    expect(bad.stderr).toMatch(/1 shard\(s\) do not match their manifest/);
    await fs.truncate(second, 100);
    const read = async () => {
      for await (const b of readDocs(out)) void b;
    };
    await expect(read()).rejects.toThrow(`${second}: 100 bytes, the manifest says`);
  }, 60_000);

  it('bad input: one line naming the file and line, exit 1', async () => {
    const bad = path.join(tmp, 'bad.jsonl');
    await fs.writeFile(bad, '{"text":"ok"}\n{oops}\n');
    const r = cpt('prepare', '--input', bad, '--format', 'jsonl', '--out', path.join(tmp, 'bad'));
    expect(r.status).toBe(1);
    const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('prepare ')); // progress lines
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^cpt: /);
    expect(r.stderr).toContain(`${bad}:2: invalid JSON`);
    const s = cpt('prepare', '--input', bad, '--format', 'jsonl', '--out', path.join(tmp, 'bad'), '--skip-bad');
    expect(s.status).toBe(0);
    expect(s.stdout).toMatch(/skipped: bad_json 1/);
    expect((await readManifest(path.join(tmp, 'bad'))).skipped).toEqual({ bad_json: 1 });
  }, 60_000);

  it('--help explains every option', () => {
    const r = cpt('prepare', '--help');
    for (const o of ['--input', '--format', '--out', '--field', '--id-field', '--separator', '--delimiter', '--include', '--encoding', '--skip-bad', '--shard-mb']) expect(r.stdout).toContain(o);
  }, 60_000);
});
