/**
 * The public API in its default shape: `loadPixtral` starts a module Web Worker and talks to it
 * through comlink. Checks streaming answers, progress, typed errors across the worker boundary,
 * transfer of an ImageBitmap, and dispose.
 */
import { describe, expect, it } from 'vitest';
import { loadPixtral, ContextLengthError, DisposedError, type LoadProgress } from '../../src/index.js';

const SAMPLES = '/shared/models/pixtral-tiny-screens/samples';

describe('loadPixtral (worker)', () => {
  it('streams an answer from a worker, keeps error classes, and disposes', async () => {
    const progress: LoadProgress[] = [];
    const model = await loadPixtral({ url: '/scratch/models/pixtral-tiny-screens-q4/', maxContext: 128, dtype: 'q4', onProgress: (p) => progress.push(p) });
    try {
      expect(model.info.dtype).toBe('q4');
      expect(model.info.maxContext).toBe(128);
      const total = progress.at(-1)!.totalBytes;
      expect(total).toBeGreaterThan(0);
      for (let i = 1; i < progress.length; i++) {
        if (progress[i]!.phase === progress[i - 1]!.phase) expect(progress[i]!.loadedBytes).toBeGreaterThanOrEqual(progress[i - 1]!.loadedBytes);
      }

      const bitmap = await createImageBitmap(await (await fetch(`${SAMPLES}/screen_02.png`)).blob());
      const width = bitmap.width;
      const stream = model.chat([{ role: 'user', content: [{ type: 'image', image: bitmap }, { type: 'text', text: 'What color is the box?' }] }], { maxTokens: 4 });
      const deltas: string[] = [];
      for await (const d of stream) deltas.push(d);
      const stats = await stream.stats;
      expect(deltas.join('')).toBe('green');
      expect(stats.imageTokens).toBe(8 * 9);
      expect(stats.generatedTokens).toBeGreaterThan(0);
      expect(stats.decodeTokensPerSecond).toBeGreaterThan(0);
      // The caller's bitmap was not detached by the hand-over (a detached one reads 0 x 0).
      expect(width).toBeGreaterThan(0);
      expect(bitmap.width).toBe(width);

      const err = await model.complete([{ role: 'user', content: 'x '.repeat(300) }]).catch((e) => e);
      expect(err).toBeInstanceOf(ContextLengthError);
      expect((err as ContextLengthError).maxTokens).toBe(128);
    } finally {
      await model.dispose();
    }
    expect(() => model.chat([{ role: 'user', content: 'hi' }])).toThrow(DisposedError);
  });
});
