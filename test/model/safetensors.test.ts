import { describe, it, expect } from 'vitest';
import { mkdtempSync, writeFileSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openSafetensors, writeSafetensors, toF16, toBF16, type TensorToWrite } from '../../src/model/safetensors.js';
import { UserError } from '../../src/util/errors.js';
import { loadGolden } from '../helpers/golden.js';

const tmp = () => mkdtempSync(path.join(tmpdir(), 'cpt-st-'));
const f32 = (...x: number[]) => Float32Array.from(x);

describe('safetensors', () => {
  it('writes F32/F16/BF16/I32 and reads them back (upcast to float32), with format "pt" metadata', () => {
    const dir = tmp(), file = path.join(dir, 'a.safetensors');
    const t = new Map<string, TensorToWrite>([
      ['w32', { dtype: 'F32', shape: [2, 3], data: f32(1, -2.5, 3.25, 1e-30, -0, 7) }],
      ['w16', { dtype: 'F16', shape: [3], data: f32(1, -2.5, 0.1) }],
      ['wbf', { dtype: 'BF16', shape: [1, 3], data: f32(1, -2.5, 0.1) }],
      ['ids', { dtype: 'I32', shape: [2], data: Int32Array.from([5, -7]) }],
      ['empty', { dtype: 'F32', shape: [0], data: new Float32Array(0) }],
    ]);
    writeSafetensors(file, t, { note: 'x' });
    expect(readdirSync(dir)).toEqual(['a.safetensors']); // no temp file left behind
    const r = openSafetensors(file);
    expect(r.metadata).toEqual({ format: 'pt', note: 'x' });
    expect([...r.tensors.keys()]).toEqual(['w32', 'w16', 'wbf', 'ids', 'empty']);
    expect(r.tensors.get('wbf')).toMatchObject({ dtype: 'BF16', shape: [1, 3] });
    expect(Array.from(r.read('w32'))).toEqual(Array.from(f32(1, -2.5, 3.25, 1e-30, -0, 7)));
    expect(Array.from(r.read('w16'))).toEqual([1, -2.5, 0.0999755859375]); // nearest half to 0.1
    expect(Array.from(r.read('wbf'))).toEqual([1, -2.5, 0.10009765625]); // nearest bfloat16 to 0.1
    expect(Array.from(r.readInt32('ids'))).toEqual([5, -7]);
    expect(r.read('empty').length).toBe(0);
    expect(() => r.read('nope')).toThrow(/no tensor named "nope"/);
    expect(() => r.readInt32('w32')).toThrow(/expected an integer tensor/);
    r.close();
    // Header is 8-byte aligned so tensor data can be mapped directly.
    const raw = readFileSync(file);
    expect(Number(raw.readBigUInt64LE(0)) % 8).toBe(0);
  });

  it('float32 → half rounds to nearest even like torch .half(): reproduces the golden F16 file bit for bit', () => {
    const g = loadGolden();
    for (const [name, w] of g.weights) {
      const h = new Uint16Array(w.length);
      toF16(w, h);
      const dir = tmp(), file = path.join(dir, 'h.safetensors');
      writeSafetensors(file, new Map([[name, { dtype: 'F16', shape: [w.length], data: w }]]));
      const r = openSafetensors(file);
      expect(Array.from(r.read(name))).toEqual(Array.from(g.f16Weights.get(name)!));
      r.close();
    }
  });

  it('half edge cases: ties to even, overflow, subnormals, inf and NaN', () => {
    const h = new Uint16Array(9);
    toF16(f32(1 + 2 ** -11, 1 + 3 * 2 ** -11, 65504, 65520, 2 ** -24, 2 ** -26, -Infinity, NaN, 2 ** -14), h);
    expect(Array.from(h)).toEqual([0x3c00, 0x3c02, 0x7bff, 0x7c00, 0x0001, 0x0000, 0xfc00, h[7], 0x0400]);
    expect(h[7] & 0x7c00).toBe(0x7c00);
    expect(h[7] & 0x3ff).not.toBe(0);
  });

  it('bfloat16 rounds to nearest even and keeps NaN a NaN', () => {
    const b = new Uint16Array(4);
    toBF16(f32(1 + 2 ** -8, 1 + 3 * 2 ** -8, -Infinity, NaN), b);
    expect(Array.from(b.subarray(0, 3))).toEqual([0x3f80, 0x3f82, 0xff80]);
    expect(b[3] & 0x7f80).toBe(0x7f80);
    expect(b[3] & 0x7f).not.toBe(0);
  });

  it('reads a sharded checkpoint through model.safetensors.index.json (directory or index path)', () => {
    const dir = tmp();
    writeSafetensors(path.join(dir, 'model-00001-of-00002.safetensors'), new Map([['a', { dtype: 'F32', shape: [2], data: f32(1, 2) }]]));
    writeSafetensors(path.join(dir, 'model-00002-of-00002.safetensors'), new Map([['b', { dtype: 'BF16', shape: [1], data: f32(3) }]]));
    writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({
      metadata: { total_size: 10 }, weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' },
    }));
    for (const p of [dir, path.join(dir, 'model.safetensors.index.json')]) {
      const r = openSafetensors(p);
      expect([...r.tensors.keys()].sort()).toEqual(['a', 'b']);
      expect(Array.from(r.read('a'))).toEqual([1, 2]);
      expect(Array.from(r.read('b'))).toEqual([3]);
      r.close();
    }
  });

  it('rejects files that are not safetensors with a UserError naming the file', () => {
    const dir = tmp();
    const junk = path.join(dir, 'junk.safetensors');
    writeFileSync(junk, 'this is not a safetensors file at all');
    expect(() => openSafetensors(junk)).toThrow(UserError);
    expect(() => openSafetensors(junk)).toThrow(/junk\.safetensors: not a safetensors file/);
    // Offsets that do not match the dtype and shape.
    const bad = path.join(dir, 'bad.safetensors');
    const h = Buffer.from(JSON.stringify({ x: { dtype: 'F32', shape: [4], data_offsets: [0, 8] } }));
    const len = Buffer.alloc(8); len.writeBigUInt64LE(BigInt(h.length));
    writeFileSync(bad, Buffer.concat([len, h, Buffer.alloc(8)]));
    expect(() => openSafetensors(bad)).toThrow(/tensor "x" data_offsets \[0,8\] do not match F32\[4\]/);
    expect(() => openSafetensors(path.join(dir, 'missing'))).toThrow(/no such file/);
    expect(() => openSafetensors(dir)).toThrow(/no model.safetensors or model.safetensors.index.json/);
  });
});
