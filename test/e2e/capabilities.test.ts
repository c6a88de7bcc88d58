/**
 * The demo's GPU-memory estimate and its messages (demo/capabilities.ts), in Node: the numbers
 * for Pixtral-12B q4 match docs/quantization.md, a context whose KV-cache buffer exceeds the
 * adapter's maxBufferSize is refused with a message before anything is loaded, the estimate and
 * the shader-f16 message say what actually changes on an adapter, and `?model=` links accept
 * only https: (http: on localhost).
 */
import { describe, expect, it } from 'vitest';
import { estimateMemory, memoryMessages, modelFacts, shaderF16Text, type AdapterSummary, type ModelFacts } from '../../demo/capabilities.js';
import { checkModelUrl } from '../../demo/model-url.js';

const pixtral12b: ModelFacts = {
  name: 'pixtral-12b',
  dtype: 'q4',
  weightBytes: 7.7e9,
  largestTensorBytes: 0.377e9,
  layers: 40,
  kvHeads: 8,
  headDim: 128,
  maxPositionEmbeddings: 1024000,
  visionHidden: 1024,
  maxPatches: 64 * 64,
};

const adapter = (maxBufferSize: number, f16 = true): AdapterSummary => ({
  description: 'test',
  f16,
  maxBufferSize,
  maxStorageBufferBindingSize: Math.min(maxBufferSize, 2 ** 31 - 4),
  fallback: false,
});

describe('demo capability checks', () => {
  it('estimates the KV cache of Pixtral-12B as docs/quantization.md does (8192 tokens, f16: 1.34 GB)', () => {
    const e = estimateMemory(pixtral12b, 8192);
    expect(e.kvCache).toBe(40 * 2 * 8 * 128 * 8192 * 2);
    expect(e.kvCache / 1e9).toBeCloseTo(1.34, 2);
    expect(estimateMemory(pixtral12b, 8192, 'f32').kvCache).toBe(2 * e.kvCache);
    // An f16/f32 model gets an f32 KV cache by default.
    expect(estimateMemory({ ...pixtral12b, dtype: 'f16' }, 8192).kvCache).toBe(2 * e.kvCache);
    expect(e.total).toBe(e.weights + e.kvCache + e.activations);
  });

  it('refuses a context whose KV buffer exceeds maxBufferSize, accepts one that fits', () => {
    const tooSmall = memoryMessages(pixtral12b, 16384, adapter(16 * 2 ** 20));
    expect(tooSmall.map((m) => m.level)).toContain('error');
    expect(tooSmall.find((m) => m.level === 'error')!.text).toMatch(/exceeds this adapter's maxBufferSize .* choose a shorter context/);
    const fits = memoryMessages(pixtral12b, 4096, adapter(2 ** 30));
    expect(fits.map((m) => m.level)).not.toContain('error');
    expect(fits[0]!.text).toMatch(/needs about 8\.\d GB of GPU memory/);
  });

  it('the estimate and the messages do not depend on shader-f16 (packed halves work without it)', () => {
    const withF16 = memoryMessages(pixtral12b, 4096, adapter(2 ** 30, true));
    const without = memoryMessages(pixtral12b, 4096, adapter(2 ** 30, false));
    expect(without).toEqual(withF16);
    expect(shaderF16Text(false)).toMatch(/no shader-f16, and that changes nothing here: the model runs f32 activations on every adapter/);
    expect(shaderF16Text(false)).not.toMatch(/slower/);
  });

  it('?model= accepts https: and http: on localhost only', () => {
    const page = 'https://demo.example/app/?model=x';
    expect(checkModelUrl('https://models.example/pixtral-12b-q4', page)).toEqual({ ok: true, url: 'https://models.example/pixtral-12b-q4/', host: 'models.example' });
    expect(checkModelUrl('./models/tiny/', page)).toMatchObject({ ok: true, url: 'https://demo.example/app/models/tiny/' });
    expect(checkModelUrl('http://127.0.0.1:8080/m/', page)).toMatchObject({ ok: true, host: '127.0.0.1:8080' });
    expect(checkModelUrl('http://localhost/m/', page)).toMatchObject({ ok: true });
    const refused = ['http://models.example/m/', 'ftp://models.example/m/', 'javascript:alert(1)', 'data:text/plain,x', 'http://192.168.1.2/m/'];
    for (const u of refused) expect(checkModelUrl(u, page), u).toMatchObject({ ok: false });
    expect(checkModelUrl('http://models.example/m/', page)).toMatchObject({ reason: expect.stringMatching(/must use https:/) });
    // A relative link on a plain-HTTP page elsewhere is plain HTTP too: refused.
    expect(checkModelUrl('./m/', 'http://lan.example/')).toMatchObject({ ok: false });
  });

  it('reads the facts from a converted manifest', () => {
    const f = modelFacts({
      name: 'm',
      dtype: 'q4',
      totalBytes: 1000,
      config: { vision: { hiddenSize: 96, imageSize: 128, patchSize: 16 }, text: { numLayers: 3, numKvHeads: 2, headDim: 48, maxPositionEmbeddings: 4096 } },
      tensors: [{ data: [{ byteLength: 300 }], quant: { scales: [{ byteLength: 20 }] } }, { data: [{ byteLength: 100 }, { byteLength: 250 }] }],
    });
    expect(f).toMatchObject({ weightBytes: 1000, largestTensorBytes: 350, layers: 3, kvHeads: 2, headDim: 48, maxPatches: 64 });
    expect(modelFacts({ hello: 1 })).toBeNull();
  });
});
