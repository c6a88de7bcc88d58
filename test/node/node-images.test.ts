/**
 * Images in Node (`src/node/images.ts`, sharp): the fixture's `preprocess` case decoded in Node
 * and resized by the library's Pillow-exact bicubic gives exactly the reference `resized_u8`
 * (the browser test demands the same, so Node and the browser feed the model the same pixels);
 * every accepted format decodes to the PNG's pixels; EXIF orientation is applied; bad input is
 * an ImageError naming the culprit. No GPU.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { ImageError } from '../../src/errors.js';
import { preprocessImage, resizeForModel } from '../../src/image/preprocess.js';
import { decodeImageBytes, decodeImageSource } from '../../src/node/images.js';
import { parseSafetensors } from '../helpers/safetensors.js';
import { sharedDir } from '../fixture-server.js';

const CASE = join(sharedDir, 'fixtures/pixtral-tiny-a/cases/preprocess');

interface Target { longest_edge: number; target_hw: [number, number]; expected_resized_u8_key: string }
interface ImageCase { png: string; source_hw: [number, number]; targets: Record<string, Target> }

/** Packed HWC RGB -> CHW, the fixture's layout. */
function hwcToChw(rgb: Uint8Array, w: number, h: number): Uint8Array {
  const out = new Uint8Array(3 * w * h);
  for (let i = 0; i < w * h; i++) for (let c = 0; c < 3; c++) out[c * w * h + i] = rgb[i * 3 + c]!;
  return out;
}

async function expectImageError(p: Promise<unknown>, match: RegExp): Promise<void> {
  const e = await p.then(() => null, (x: unknown) => x);
  expect(e).toBeInstanceOf(ImageError);
  expect((e as Error).message).toMatch(match);
}

describe('fixture pixtral-tiny-a preprocess case through Node (sharp decode + Pillow-exact resize)', async () => {
  const c = JSON.parse(await readFile(join(CASE, 'case.json'), 'utf8')) as { images: ImageCase[] };
  const buf = await readFile(join(CASE, 'expected.safetensors'));
  const expected = parseSafetensors(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer);

  it('has six images', () => expect(c.images).toHaveLength(6));
  for (const img of c.images) {
    it(`${img.png}: resized u8 equals the reference exactly at every edge`, async () => {
      const decoded = await decodeImageSource(join(CASE, img.png));
      expect([decoded.height, decoded.width]).toEqual(img.source_hw);
      for (const t of Object.values(img.targets)) {
        const r = resizeForModel(decoded, { longestEdge: t.longest_edge, tokenPx: 16 });
        expect([r.height, r.width]).toEqual(t.target_hw);
        const ref = expected[t.expected_resized_u8_key]!.data as Uint8Array;
        const got = hwcToChw(r.rgb, r.width, r.height);
        // Lossless PNG decode + integer-exact resampler: any differing byte is a real bug.
        let differing = 0;
        for (let i = 0; i < ref.length; i++) if (got[i] !== ref[i]) differing++;
        expect(differing).toBe(0);
      }
    });
  }
});

describe('formats and orientation', async () => {
  const png = await readFile(join(CASE, 'images/wide_1200x300.png'));
  const base = await decodeImageBytes(png, 'png');

  it('lossless WebP, TIFF and a Buffer/ArrayBuffer/Blob of the PNG decode to the same pixels', async () => {
    const webp = await sharp(png).webp({ lossless: true }).toBuffer();
    const tiff = await sharp(png).tiff({ compression: 'lzw' }).toBuffer();
    for (const [what, src] of [
      ['webp', webp], ['tiff', tiff], ['ArrayBuffer', png.buffer.slice(png.byteOffset, png.byteOffset + png.byteLength)], ['Blob', new Blob([png])],
    ] as const) {
      const d = await decodeImageSource(src as Uint8Array);
      expect([d.width, d.height], what).toEqual([base.width, base.height]);
      expect(Buffer.from(d.data).equals(Buffer.from(base.data)), what).toBe(true);
    }
  });

  it('GIF: a 4-colour image decodes exactly (palette formats carry it losslessly)', async () => {
    const w = 20, h = 10;
    const raw = Buffer.alloc(w * h * 4);
    const colours = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]];
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const col = colours[(x >= 10 ? 1 : 0) + (y >= 5 ? 2 : 0)]!;
      raw.set([...col, 255], (y * w + x) * 4);
    }
    const gif = await sharp(raw, { raw: { width: w, height: h, channels: 4 } }).gif().toBuffer();
    const d = await decodeImageBytes(gif, 'gif');
    expect([d.width, d.height]).toEqual([w, h]);
    expect(Buffer.from(d.data).equals(raw)).toBe(true);
  });

  it('animated GIF: the first frame only', async () => {
    const frame = (background: string) => sharp({ create: { width: 6, height: 4, channels: 4, background } }).png().toBuffer();
    const gif = await sharp([await frame('#ff0000'), await frame('#0000ff')], { join: { animated: true } }).gif().toBuffer();
    expect((await sharp(gif, { pages: -1 }).metadata()).pages).toBe(2);
    const d = await decodeImageBytes(gif, 'anim.gif');
    expect([d.width, d.height]).toEqual([6, 4]);
    for (let i = 0; i < d.data.length; i += 4) expect(Array.from(d.data.subarray(i, i + 4))).toEqual([255, 0, 0, 255]);
  });

  it('EXIF orientation 6 turns a 32x16 JPEG upright into 16x32 with the quadrants rotated', async () => {
    const w = 32, h = 16;
    const raw = Buffer.alloc(w * h * 3);
    const quads = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]]; // red green / blue white
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw.set(quads[(x >= 16 ? 1 : 0) + (y >= 8 ? 2 : 0)]!, (y * w + x) * 3);
    const jpeg = await sharp(raw, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toBuffer();
    const d = await decodeImageBytes(jpeg, 'jpeg');
    expect([d.width, d.height]).toEqual([16, 32]);
    const at = (x: number, y: number) => Array.from(d.data.subarray((y * d.width + x) * 4, (y * d.width + x) * 4 + 3));
    // 90 degrees clockwise: the stored left column, bottom to top, becomes the top row.
    const want = [[0, 0, 255], [255, 0, 0], [255, 255, 255], [0, 255, 0]];
    const got = [at(4, 8), at(12, 8), at(4, 24), at(12, 24)];
    // JPEG at quality 100 on flat blocks: within 40 of the colour (chroma subsampling at edges).
    got.forEach((g, i) => expect(g.every((v, k) => Math.abs(v - want[i]![k]!) <= 40), `quadrant ${i}: ${g}`).toBe(true));
  });

  it('transparent pixels reach the engine unpremultiplied and are composited onto white there', async () => {
    const raw = Buffer.from([255, 0, 0, 0, 0, 0, 255, 128, 0, 255, 0, 255, 10, 20, 30, 255]);
    const p = await sharp(raw, { raw: { width: 2, height: 2, channels: 4 } }).png().toBuffer();
    const d = await decodeImageBytes(p, 'png');
    expect(Array.from(d.data)).toEqual(Array.from(raw));
    const pre = await preprocessImage(d, { longestEdge: 16, patchSize: 16 });
    expect([pre.width, pre.height]).toEqual([16, 16]);
  });
});

describe('errors name the culprit', () => {
  it('missing file, garbage bytes, truncated PNG, a PDF where an image is expected', async () => {
    await expectImageError(decodeImageSource('/nonexistent/dir/x.png'), /\/nonexistent\/dir\/x\.png: cannot read the file \(ENOENT\)/);
    await expectImageError(decodeImageBytes(new Uint8Array(4096).fill(0xa5), 'junk.bin'), /^junk\.bin: not a decodable image/);
    const png = await readFile(join(CASE, 'images/tiny_17x17.png'));
    await expectImageError(decodeImageBytes(png.subarray(0, 40), 'cut.png'), /^cut\.png: /);
    await expectImageError(decodeImageBytes(new TextEncoder().encode('%PDF-1.4\n%%EOF\n'), 'doc.pdf'), /^doc\.pdf: /);
  });

  it('decoded RGBA handed to the engine must hold width x height x 4 bytes', async () => {
    const bad = { width: 4, height: 4, data: new Uint8ClampedArray(60) };
    await expectImageError(preprocessImage(bad, { longestEdge: 16, patchSize: 16 }), /RGBA image of 4x4 needs 64 bytes, got 60/);
  });

  it('an image past the size limit is refused from its header', async () => {
    const big = await sharp({ create: { width: 20000, height: 8, channels: 3, background: '#fff' } }).png().toBuffer();
    await expectImageError(decodeImageBytes(big, 'huge.png'), /huge\.png.*20000x8.*beyond the limit/);
  });
});
