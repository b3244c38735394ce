import { describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { latestGoodCheckpoint, listCheckpoints, verifyCheckpoint, writeCheckpoint } from '../../src/train/checkpoint-store.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'cpt-ckpt-'));

describe('checkpoint store', () => {
  it('writes every file with a manifest that verifies, and keeps the newest `keep`', () => {
    const run = tmp();
    for (const step of [2, 4, 6, 8]) writeCheckpoint(run, step, { 'a.bin': new Uint8Array([step, 1, 2]), 'state.json': `{"step":${step}}` }, 3);
    expect(listCheckpoints(run).map((c) => c.step)).toEqual([4, 6, 8]);
    expect(readdirSync(run).filter((n) => n.startsWith('.tmp'))).toEqual([]);
    const v = verifyCheckpoint(path.join(run, 'step-8'));
    expect(v.ok).toBe(true);
    expect(readFileSync(path.join(run, 'step-8', 'state.json'), 'utf8')).toBe('{"step":8}');
  });
  it('orders by step number, not by name', () => {
    const run = tmp();
    for (const step of [9, 10, 100]) writeCheckpoint(run, step, { x: 'x' }, 0);
    expect(listCheckpoints(run).map((c) => c.step)).toEqual([9, 10, 100]);
  });
  it('skips a corrupted or truncated newest checkpoint for the previous good one, saying why', () => {
    const run = tmp();
    for (const step of [1, 2, 3]) writeCheckpoint(run, step, { 'w.bin': new Uint8Array(64).fill(step) }, 0);
    const f3 = path.join(run, 'step-3', 'w.bin');
    const b = readFileSync(f3);
    b[10] ^= 0xff;
    writeFileSync(f3, b);
    truncateSync(path.join(run, 'step-2', 'w.bin'), 10);
    const warnings: string[] = [];
    const got = latestGoodCheckpoint(run, (m) => warnings.push(m), () => true)?.ref;
    expect(got?.step).toBe(1);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/step-3.*sha256/);
    expect(warnings[1]).toMatch(/step-2.*truncated/);
  });
  it('treats a checkpoint without a manifest as incomplete', () => {
    const run = tmp();
    writeCheckpoint(run, 1, { x: 'x' }, 0);
    writeCheckpoint(run, 2, { x: 'x' }, 0);
    writeFileSync(path.join(run, 'step-2', 'MANIFEST.json'), '{"format":');
    const warnings: string[] = [];
    expect(latestGoodCheckpoint(run, (m) => warnings.push(m), () => true)?.ref.step).toBe(1);
    expect(warnings[0]).toMatch(/not valid JSON/);
  });
});
