/**
 * The streaming GGUF header reader on llama.cpp's own files: every tensor's type and shape as the
 * fixtures record them; the same header from a local file, a Blob and a real HTTP server that
 * honours Range (the header is known after a few hundred KiB of a larger file, and no byte past
 * what was asked is served); and truncated or tampered files refused with typed errors.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormatError, IntegrityError } from '../../src/errors.js';
import { inspectGguf } from '../../src/gguf/index.js';
import { readGgufHeader } from '../../src/gguf/reader.js';
import { blobSource, bytesSource, urlSource } from '../../src/gguf/source.js';
import { fileSource } from '../../src/gguf/source-node.js';
import { readTensorBytes } from '../../src/gguf/tensor-data.js';
import { sharedDir } from '../fixture-server.js';

const gguf = resolve(sharedDir, 'fixtures/gguf');

describe('GGUF header of every fixture file', () => {
  for (const folder of ['kq', 'screens']) {
    const types = JSON.parse(readFileSync(resolve(gguf, folder, 'tensor-types.json'), 'utf8')) as Record<string, Record<string, [string, number[]]>>;
    const shipped = Object.keys(types).filter((f) => existsSync(resolve(gguf, folder, f)));
    for (const file of shipped) {
      it(`${folder}/${file}`, async () => {
        const h = await readGgufHeader(fileSource(resolve(gguf, folder, file)));
        const got = Object.fromEntries(h.tensors.map((t) => [t.name, [t.typeName, t.shape]]));
        expect(got).toEqual(types[file]);
        expect(h.version).toBe(3);
        expect(h.dataOffset % h.alignment).toBe(0);
        expect(h.declaredSize).toBe(h.fileSize);
        expect(h.metadata.get('general.architecture')).toBe(file.includes('mmproj') ? 'clip' : 'llama');
      });
    }
  }
});

describe('sources', () => {
  const path = resolve(gguf, 'kq/pixtral-kq-tiny-text-f16.gguf');
  const bytes = new Uint8Array(readFileSync(path));
  let server: Server;
  let base: string;
  const served: { range?: string; bytes: number }[] = [];
  let honourRange = true;

  beforeAll(async () => {
    server = createServer((req, res) => {
      const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
      if (!m || !honourRange) {
        served.push({ bytes: bytes.byteLength });
        res.writeHead(200, { 'Content-Length': bytes.byteLength });
        res.end(bytes);
        return;
      }
      const start = Number(m[1]);
      const end = Math.min(Number(m[2]), bytes.byteLength - 1);
      if (start >= bytes.byteLength) {
        res.writeHead(416, { 'Content-Range': `bytes */${bytes.byteLength}` });
        res.end();
        return;
      }
      const body = bytes.subarray(start, end + 1);
      served.push({ range: req.headers.range, bytes: body.byteLength });
      res.writeHead(206, { 'Content-Range': `bytes ${start}-${end}/${bytes.byteLength}`, 'Content-Length': body.byteLength });
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/model.gguf`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('a URL with Range requests: the header before any weight byte, the same as from disk', async () => {
    served.length = 0;
    honourRange = true;
    const fromDisk = await readGgufHeader(fileSource(path));
    const fromUrl = await readGgufHeader(urlSource(base), { firstChunk: 4096 });
    expect(fromUrl.tensors).toEqual(fromDisk.tensors);
    expect([...fromUrl.metadata.keys()]).toEqual([...fromDisk.metadata.keys()]);
    expect(fromUrl.fileSize).toBe(bytes.byteLength);
    // Doubling chunks from 4 KiB: the header (under 70 KiB) costs < 2x its size, a fraction of the 5.3 MB file.
    const total = served.reduce((a, s) => a + s.bytes, 0);
    expect(served.every((s) => s.range)).toBe(true);
    expect(total).toBe(fromUrl.bytesRead);
    expect(total).toBeLessThan(2 * fromUrl.dataOffset);
    // A tensor is then read by its own range.
    const t = fromUrl.tensors.find((x) => x.name === 'blk.1.attn_q.weight')!;
    const b = await readTensorBytes(urlSource(base), t);
    expect(b).toEqual(bytes.subarray(t.offset, t.offset + t.byteLength));
  });

  it('inspectGguf: architecture, quant mix, size and parameters from the header alone', async () => {
    served.length = 0;
    const { summary } = await inspectGguf(base);
    expect(summary).toMatchObject({ architecture: 'llama', name: 'pixtral-kq-tiny', bytes: bytes.byteLength, tensors: 21, unsupported: [] });
    expect(summary.quantMix).toEqual({ F16: { tensors: 16, bytes: summary.quantMix.F16!.bytes }, F32: { tensors: 5, bytes: 5 * 1024 } });
    expect(summary.parameters).toBe(2 * 256 * 2048 + 2 * (256 * 256 * 2 + 256 * 128 * 2 + 3 * 256 * 768 + 2 * 256) + 256);
    expect(summary.quantMix.F16!.bytes).toBe(2 * (2 * 256 * 2048 + 2 * (256 * 256 * 2 + 256 * 128 * 2 + 3 * 256 * 768)));
    expect(summary.largestTensor.bytes).toBe(2 * 256 * 2048);
    expect(served.reduce((a, s) => a + s.bytes, 0)).toBeLessThan(bytes.byteLength / 4);
  });

  it('a server without Range support is refused, not downloaded whole', async () => {
    honourRange = false;
    await expect(readGgufHeader(urlSource(base))).rejects.toThrow(/ignored the Range request/);
    honourRange = true;
  });

  it('a Blob (a picked File) is read in place', async () => {
    const h = await readGgufHeader(blobSource(new Blob([bytes]), 'picked.gguf'));
    expect(h.tensors.length).toBe(21);
    expect(h.source).toBe('picked.gguf');
  });
});

describe('truncated or tampered files', () => {
  const bytes = new Uint8Array(readFileSync(resolve(gguf, 'kq/pixtral-kq-tiny-text-q4_k_m.gguf')));
  const read = (b: Uint8Array) => readGgufHeader(bytesSource(b, 'x.gguf'), { firstChunk: 1024 });

  it('cut inside the header: IntegrityError naming where', async () => {
    await expect(read(bytes.slice(0, 30000))).rejects.toThrow(IntegrityError);
    await expect(read(bytes.slice(0, 30000))).rejects.toThrow(/x\.gguf: truncated in the header/);
  });

  it('cut inside the tensor data: IntegrityError with both sizes', async () => {
    const cut = bytes.byteLength - 100;
    await expect(read(bytes.slice(0, cut))).rejects.toThrow(new RegExp(`declares ${bytes.byteLength} bytes.*has ${cut}`));
  });

  it('a tensor read past a truncated end: IntegrityError naming the tensor', async () => {
    const h = await read(bytes);
    const last = h.tensors.reduce((a, b) => (a.offset > b.offset ? a : b));
    await expect(readTensorBytes(bytesSource(bytes.slice(0, bytes.byteLength - 1), 'x.gguf'), last)).rejects.toThrow(
      new RegExp(`tensor ${last.name.replace(/\./g, '\\.')}`),
    );
  });

  it('bad magic, version, type, alignment: FormatError', async () => {
    const tamper = (at: number, v: number) => {
      const c = bytes.slice();
      new DataView(c.buffer).setUint32(at, v, true);
      return c;
    };
    await expect(read(tamper(0, 0x12345678))).rejects.toThrow(/not a GGUF file/);
    await expect(read(tamper(4, 99))).rejects.toThrow(/version 99/);
    const h = await read(bytes);
    // The tensor infos end right before the padding; the last info ends with u32 type + u64 offset.
    const infosEnd = findInfosEnd(bytes, h.tensors.at(-1)!.offset - h.dataOffset);
    await expect(read(tamper(infosEnd - 12, 77))).rejects.toThrow(/unknown ggml type 77/);
    await expect(read(tamper(infosEnd - 8, 4))).rejects.toThrow(/offset 4 is not aligned/);
    await expect(read(tamper(infosEnd - 8, 0))).rejects.toThrow(FormatError);
  });
});

/** End of the last tensor info: where its u64 offset `rel` is stored, + 8. */
function findInfosEnd(b: Uint8Array, rel: number): number {
  const v = new DataView(b.buffer, b.byteOffset);
  for (let at = b.byteLength - 8; at >= 0; at--) {
    if (v.getUint32(at, true) === rel && v.getUint32(at + 4, true) === 0 && at < 100000) return at + 8;
  }
  throw new Error('no tensor info found');
}
