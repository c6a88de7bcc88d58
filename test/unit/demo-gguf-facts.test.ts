/**
 * The demo's GGUF facts (`demo/gguf-facts.ts`) from the real fixture headers: the lines a user
 * reads before downloading (architecture, quant mix by bytes, size, vision tower), the verdict
 * against an adapter (fits; does not fit, with the limit that fails), a pair with a tensor type
 * the library cannot read, and no adapter at all.
 */
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ggufPairFacts } from '../../demo/gguf-facts.js';
import type { AdapterSummary } from '../../demo/capabilities.js';
import { readGgufHeader, type GgufHeader } from '../../src/gguf/reader.js';
import { fileSource } from '../../src/gguf/source-node.js';
import { sharedDir } from '../fixture-server.js';

const kq = resolve(sharedDir, 'fixtures/gguf/kq');
const header = (f: string) => readGgufHeader(fileSource(resolve(kq, f)));
const big: AdapterSummary = { description: 'test', f16: true, maxBufferSize: 1 << 30, maxStorageBufferBindingSize: 1 << 27, fallback: false };

describe('demo GGUF facts', () => {
  it('kq Q4_K_M + F16 mmproj: architecture, quant mix, size, vision tower; fits a 1 GiB adapter', async () => {
    const f = ggufPairFacts(await header('pixtral-kq-tiny-text-q4_k_m.gguf'), await header('pixtral-kq-tiny-mmproj-f16.gguf'), 1024, big);
    expect(f.lines[0]).toBe('Architecture: Pixtral (llama text model "pixtral-kq-tiny": 2 layers, hidden 256, 4/2 heads, vocabulary 2048, trained context 4096).');
    // Q4_K everywhere but output, blk.1.attn_v and blk.1.ffn_down (Q6_K): the fixture README's table.
    expect(f.lines[1]).toMatch(/^Quant mix: Q4_K \d+%, Q6_K \d+%, F32 <1% \(text\); F16 \d+%, F32 <1% \(mmproj\)\.$/);
    expect(f.lines[2]).toMatch(/^Size: 6\.3 MB \(text 1\.7 MB, mmproj 4\.6 MB\), [\d.]+ M parameters\.$/);
    expect(f.lines[3]).toBe('Vision tower: 3 layers, hidden 256, patch 16 px, images up to 256 px (clip, projector pixtral).');
    expect(f.fits).toBe(true);
    expect(f.messages[0]!.text).toMatch(/^Fits this adapter/);
    // The loader's KV cache for a quantised pair is f16: 2 x 2 layers x 2 kv heads x 64 x 1024 x 2 bytes.
    expect(f.messages[1]!.text).toContain('KV cache 1.0 MB');
  });

  it('does not fit when one KV-cache buffer exceeds maxBufferSize, and says so', async () => {
    const tiny = { ...big, maxBufferSize: 64 << 10 };
    const f = ggufPairFacts(await header('pixtral-kq-tiny-text-q4_0.gguf'), await header('pixtral-kq-tiny-mmproj-f16.gguf'), 4096, tiny);
    expect(f.fits).toBe(false);
    expect(f.messages[0]).toEqual({ level: 'error', text: 'Does not fit this adapter (see below).' });
    expect(f.messages.some((m) => m.level === 'error' && /exceeds this adapter's maxBufferSize \(65\.5 KB\): choose a shorter context/.test(m.text))).toBe(true);
  });

  it('an unreadable tensor type, or no adapter: not loadable, with the reason', async () => {
    const text = await header('pixtral-kq-tiny-text-q4_k_s.gguf');
    const odd: GgufHeader = { ...text, tensors: text.tensors.map((t, i) => (i === 3 ? { ...t, type: 11, typeName: 'Q3_K' } : t)) };
    const mm = await header('pixtral-kq-tiny-mmproj-f16.gguf');
    const f = ggufPairFacts(odd, mm, 1024, big);
    expect(f.fits).toBe(false);
    expect(f.messages).toEqual([{ level: 'error', text: `Cannot load: tensors in types this library cannot read: ${text.tensors[3]!.name} (Q3_K).` }]);
    const none = ggufPairFacts(text, mm, 1024, null);
    expect(none.fits).toBe(false);
    expect(none.messages[0]!.text).toMatch(/no WebGPU adapter/);
  });

  it('two text models (no mmproj): FormatError naming the file', async () => {
    const text = await header('pixtral-kq-tiny-text-q4_0.gguf');
    expect(() => ggufPairFacts(text, text, 1024, big)).toThrow(/text-q4_0\.gguf: general\.architecture "llama" is not clip/);
  });
});
