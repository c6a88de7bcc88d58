/**
 * `tensorsInSpans` on the real `kq` files: every tensor comes out with exactly its bytes (as a
 * per-tensor read gives them), in few reads (neighbours together, each read at most the span
 * unless one tensor alone is larger), and a file cut short is an IntegrityError naming the tensor.
 */
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IntegrityError } from '../../src/errors.js';
import { readGgufHeader } from '../../src/gguf/reader.js';
import { fileSource } from '../../src/gguf/source-node.js';
import { bytesSource, type ByteSource } from '../../src/gguf/source.js';
import { readTensorBytes, tensorsInSpans } from '../../src/gguf/tensor-data.js';
import { sharedDir } from '../fixture-server.js';

const KQ = resolve(sharedDir, 'fixtures/gguf/kq');

function counted(src: ByteSource) {
  const reads: number[] = [];
  const s: ByteSource = { name: src.name, size: () => src.size(), read: (o, n, sig) => (reads.push(n), src.read(o, n, sig)) };
  return { s, reads };
}

describe('tensorsInSpans', () => {
  it('yields every tensor of both files with its exact bytes, in few bounded reads', async () => {
    const text = fileSource(resolve(KQ, 'pixtral-kq-tiny-text-q4_k_m.gguf'));
    const mmproj = fileSource(resolve(KQ, 'pixtral-kq-tiny-mmproj-f16.gguf'));
    const h = { text: await readGgufHeader(text), mmproj: await readGgufHeader(mmproj) };
    const tensors = [
      ...h.mmproj.tensors.map((info) => ({ file: 'mmproj' as const, info })),
      ...h.text.tensors.map((info) => ({ file: 'text' as const, info })),
    ];
    const c = { text: counted(text), mmproj: counted(mmproj) };
    const span = 512 << 10;
    const seen = new Map<string, Uint8Array>();
    for await (const { t, bytes } of tensorsInSpans({ text: c.text.s, mmproj: c.mmproj.s }, tensors, { spanBytes: span })) {
      seen.set(`${t.file}:${t.info.name}`, bytes.slice());
    }
    expect(seen.size).toBe(tensors.length);
    for (const t of tensors) {
      const want = await readTensorBytes(t.file === 'text' ? text : mmproj, t.info);
      expect(Buffer.from(seen.get(`${t.file}:${t.info.name}`)!).equals(Buffer.from(want)), t.info.name).toBe(true);
    }
    const largest = Math.max(...tensors.map((t) => t.info.byteLength));
    for (const n of [...c.text.reads, ...c.mmproj.reads]) expect(n).toBeLessThanOrEqual(Math.max(span, largest));
    // Neighbours share reads: far fewer reads than tensors (one per tensor before).
    const reads = c.text.reads.length + c.mmproj.reads.length;
    expect(reads).toBeLessThan(tensors.length / 3);
  });

  it('a source cut short: IntegrityError naming the tensor', async () => {
    const whole = fileSource(resolve(KQ, 'pixtral-kq-tiny-text-q4_0.gguf'));
    const h = await readGgufHeader(whole);
    const size = (await whole.size())!;
    const cut = bytesSource((await whole.read(0, size)).subarray(0, size - 1000), 'cut.gguf');
    const run = async () => {
      for await (const _ of tensorsInSpans({ text: cut }, h.tensors.map((info) => ({ file: 'text' as const, info })))) void _;
    };
    await expect(run()).rejects.toThrow(IntegrityError);
    await expect(run()).rejects.toThrow(/cut\.gguf: truncated: tensor \S+ needs bytes/);
  });
});
