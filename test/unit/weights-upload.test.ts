import { describe, expect, it } from 'vitest';
import { AlignedWriter, defaultRowParts } from '../../src/weights/upload.js';
import { normalizeBaseUrl } from '../../src/weights/store.js';
import type { TensorEntry } from '../../src/weights/manifest.js';

/** A fake "GPU buffer": writes are checked for 4-byte alignment and applied to a byte array. */
function sink(size: number) {
  const mem = new Uint8Array(size);
  const writes: [number, number][] = [];
  const buf = {} as GPUBuffer;
  const w = new AlignedWriter((b, off, bytes) => {
    expect(b).toBe(buf);
    expect(off % 4).toBe(0);
    expect(bytes.byteLength % 4).toBe(0);
    mem.set(bytes, off);
    writes.push([off, bytes.byteLength]);
  });
  return { mem, writes, buf, w };
}

describe('AlignedWriter', () => {
  it('assembles ranges cut at odd bytes, in any order, into aligned writes', () => {
    const src = Uint8Array.from({ length: 37 }, (_, i) => i + 1);
    const { mem, buf, w } = sink(40);
    // cuts at 3, 10, 11, 22, 37
    for (const [a, b] of [[10, 11], [0, 3], [22, 37], [3, 10], [11, 22]] as const) w.put(buf, a, src.subarray(a, b));
    w.flush();
    expect(Array.from(mem.subarray(0, 37))).toEqual(Array.from(src));
    expect(Array.from(mem.subarray(37))).toEqual([0, 0, 0]); // padding
  });

  it('writes an aligned range in one call with no pending words', () => {
    const { writes, buf, w } = sink(64);
    w.put(buf, 8, new Uint8Array(32));
    w.flush();
    expect(writes).toEqual([[8, 32]]);
  });
});

describe('defaultRowParts', () => {
  const t = (shape: number[], bytes: number, scales = 0): TensorEntry => ({
    name: 'w', dtype: scales ? 'q4' : 'f16', shape, data: [{ shard: 0, offset: 0, byteLength: bytes }],
    quant: scales ? { format: 'q4g32', groupSize: 32, scales: [{ shard: 0, offset: 0, byteLength: scales }] } : undefined,
  });

  it('keeps a tensor that fits in one part', () => {
    expect(defaultRowParts(t([10, 6], 120), 120)).toEqual([{ rowStart: 0, rows: 10 }]);
  });

  it('splits on row counts that keep part offsets 4-byte aligned', () => {
    // f16 [11, 3]: 6 bytes per row -> parts must have an even row count.
    const parts = defaultRowParts(t([11, 3], 66), 20);
    expect(parts).toEqual([{ rowStart: 0, rows: 2 }, { rowStart: 2, rows: 2 }, { rowStart: 4, rows: 2 }, { rowStart: 6, rows: 2 }, { rowStart: 8, rows: 2 }, { rowStart: 10, rows: 1 }]);
    for (const p of parts) expect((p.rowStart * 6) % 4).toBe(0);
  });

  it('splits q4 data and scales on the same rows', () => {
    // q4 [8, 64]: 32 B data and 4 B scales per row.
    expect(defaultRowParts(t([8, 64], 256, 32), 100)).toEqual([{ rowStart: 0, rows: 3 }, { rowStart: 3, rows: 3 }, { rowStart: 6, rows: 2 }]);
  });
});

describe('normalizeBaseUrl', () => {
  it('accepts a folder, its manifest, or a Hugging Face resolve URL', () => {
    expect(normalizeBaseUrl('https://example.com/models/p12b')).toBe('https://example.com/models/p12b/');
    expect(normalizeBaseUrl('https://example.com/models/p12b/manifest.json?x=1')).toBe('https://example.com/models/p12b/');
    expect(normalizeBaseUrl('https://huggingface.co/org/repo/resolve/main/')).toBe('https://huggingface.co/org/repo/resolve/main/');
  });
});
