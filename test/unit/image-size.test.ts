/**
 * The image target-size rule (`src/image/size.ts`) against the fixtures: every image of
 * pixtral-tiny-a's `preprocess` case at longest edge 1024 and 256, the rounding probes where
 * mistral_common (nearest) and Hugging Face (floor) disagree, mistral3's 28-pixel tokens, and the
 * extreme shapes (1-pixel strips, 10000-pixel screenshots).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configFromHf, PIXTRAL_12B_2409 } from '../../src/config.js';
import { ImageError, LimitError } from '../../src/errors.js';
import { preprocessOptionsFor } from '../../src/image/preprocess.js';
import { roundHalfEven, sizeForImage } from '../../src/image/size.js';
import { sharedDir } from '../fixture-server.js';

type Hw = [number, number];
interface Target {
  longest_edge: number;
  target_hw: Hw;
  grid_rows_cols: Hw;
  num_image_tokens: number;
  rounding_variants_hw: { floor: Hw; round: Hw };
}
interface PreprocessCase {
  images: { png: string; source_hw: Hw; targets: Record<'le1024' | 'le256', Target> }[];
  rounding_probes_sizes_only: Record<string, unknown>[];
}

const preprocessCase = JSON.parse(
  readFileSync(resolve(sharedDir, 'fixtures/pixtral-tiny-a/cases/preprocess/case.json'), 'utf8'),
) as PreprocessCase;

const hw = (s: { height: number; width: number }): Hw => [s.height, s.width];

describe('sizeForImage: preprocess case (patch 16)', () => {
  it('has the six images', () => expect(preprocessCase.images).toHaveLength(6));

  for (const img of preprocessCase.images) {
    for (const key of ['le1024', 'le256'] as const) {
      it(`${img.png} ${key}`, () => {
        const t = img.targets[key];
        const [h, w] = img.source_hw;
        const s = sizeForImage(h, w, { longestEdge: t.longest_edge, tokenPx: 16 });
        expect(hw(s)).toEqual(t.target_hw);
        expect([s.rows, s.cols]).toEqual(t.grid_rows_cols);
        expect(s.tokens).toBe(t.num_image_tokens);
        const floor = sizeForImage(h, w, { longestEdge: t.longest_edge, tokenPx: 16, rounding: 'floor' });
        expect(hw(floor)).toEqual(t.rounding_variants_hw.floor);
        expect(hw(s)).toEqual(t.rounding_variants_hw.round);
      });
    }
  }
});

describe('sizeForImage: rounding probes (nearest = mistral_common, floor = HF)', () => {
  const probes = preprocessCase.rounding_probes_sizes_only;
  it('has probes where the two rules disagree', () => {
    const differ = probes.filter((p) => JSON.stringify(p['floor_hw(HF current)']) !== JSON.stringify(p['round_hw(mistral_common)']));
    expect(differ.length).toBeGreaterThanOrEqual(2);
  });
  for (const p of probes) {
    const [h, w] = p.source_hw as Hw;
    const L = p.longest_edge as number;
    it(`${h}x${w} (HxW) at L=${L}`, () => {
      const opts = { longestEdge: L, tokenPx: p.patch as number };
      expect(hw(sizeForImage(h, w, opts))).toEqual(p['round_hw(mistral_common)']);
      expect(hw(sizeForImage(h, w, { ...opts, rounding: 'nearest' }))).toEqual(p['round_hw(mistral_common)']);
      expect(hw(sizeForImage(h, w, { ...opts, rounding: 'floor' }))).toEqual(p['floor_hw(HF current)']);
    });
  }
});

describe('sizeForImage: extreme shapes', () => {
  it('1-pixel strips become one patch row/column', () => {
    // 1 x 10000 at L=1024: 1/9.77 rounds (and floors) to 0, clamped to 1 pixel -> one patch.
    for (const rounding of ['nearest', 'floor'] as const) {
      expect(sizeForImage(1, 10000, { longestEdge: 1024, tokenPx: 16, rounding })).toEqual({
        height: 16, width: 1024, rows: 1, cols: 64, tokens: 65,
      });
      expect(sizeForImage(10000, 1, { longestEdge: 1024, tokenPx: 16, rounding })).toEqual({
        height: 1024, width: 16, rows: 64, cols: 1, tokens: 128,
      });
    }
    expect(sizeForImage(1, 500, { longestEdge: 1024, tokenPx: 16 })).toEqual({
      height: 16, width: 512, rows: 1, cols: 32, tokens: 33,
    });
    expect(sizeForImage(1, 1, { longestEdge: 1024, tokenPx: 16 })).toEqual({
      height: 16, width: 16, rows: 1, cols: 1, tokens: 2,
    });
  });

  it('10000x300 screenshots', () => {
    // ratio 10000/1024 = 9.765625; 300/ratio = 30.72 -> 31 (nearest) or 30 (floor) -> 32 either way.
    const tall = sizeForImage(10000, 300, { longestEdge: 1024, tokenPx: 16 });
    expect(tall).toEqual({ height: 1024, width: 32, rows: 64, cols: 2, tokens: 192 });
    const wide = sizeForImage(300, 10000, { longestEdge: 1024, tokenPx: 16 });
    expect(wide).toEqual({ height: 32, width: 1024, rows: 2, cols: 64, tokens: 130 });
    // 10000x470: 470/9.765625 = 48.128 -> 48 both ways; 10000x475: 48.64 -> 49 (-> 64) vs 48.
    expect(sizeForImage(475, 10000, { longestEdge: 1024, tokenPx: 16 }).height).toBe(64);
    expect(sizeForImage(475, 10000, { longestEdge: 1024, tokenPx: 16, rounding: 'floor' }).height).toBe(48);
  });

  it('ties round to even like Python round()', () => {
    expect([0.5, 1.5, 2.5, 16.5, 17.5, 2.4999, 2.5001].map(roundHalfEven)).toEqual([0, 2, 2, 16, 18, 2, 3]);
    // 33 x 2048 at L=1024: ratio 2, 33/2 = 16.5 -> 16 (even) -> 16 px; Math.round would give 17 -> 32.
    expect(sizeForImage(33, 2048, { longestEdge: 1024, tokenPx: 16 }).height).toBe(16);
    expect(sizeForImage(35, 2048, { longestEdge: 1024, tokenPx: 16 }).height).toBe(32);
  });
});

describe('sizeForImage: options', () => {
  it('a lowered longest edge (512)', () => {
    const o = { longestEdge: 512, tokenPx: 16 };
    expect(sizeForImage(300, 1200, o)).toEqual({ height: 128, width: 512, rows: 8, cols: 32, tokens: 264 });
    expect(sizeForImage(1200, 300, o)).toEqual({ height: 512, width: 128, rows: 32, cols: 8, tokens: 288 });
    // pano 600x4000: ratio 7.8125, 600/ratio = 76.8 -> 77 -> 80 (floor: 76 -> 80).
    expect(sizeForImage(600, 4000, o)).toEqual({ height: 80, width: 512, rows: 5, cols: 32, tokens: 165 });
    // Already within 512: only rounded up to patches.
    expect(sizeForImage(500, 37, o)).toEqual({ height: 512, width: 48, rows: 32, cols: 3, tokens: 128 });
    expect(sizeForImage(256, 256, o)).toEqual({ height: 256, width: 256, rows: 16, cols: 16, tokens: 272 });
  });

  it('mistral3: patch 14 * merge 2 = 28, sizes of the mistral3-tiny-a cases', () => {
    const cases = ['one_image_wide', 'two_images'].flatMap((name) => {
      const c = JSON.parse(
        readFileSync(resolve(sharedDir, `fixtures/mistral3-tiny-a/cases/${name}/case.json`), 'utf8'),
      ) as { images: { source_size_wh: Hw; pixel_hw: Hw; merged_grid_rows_cols: Hw; num_prompt_tokens: number }[] };
      return c.images;
    });
    expect(cases).toHaveLength(3);
    for (const img of cases) {
      const [w, h] = img.source_size_wh;
      const s = sizeForImage(h, w, { longestEdge: 224, tokenPx: 28 });
      expect(hw(s)).toEqual(img.pixel_hw);
      expect([s.rows, s.cols]).toEqual(img.merged_grid_rows_cols);
      expect(s.tokens).toBe(img.num_prompt_tokens);
    }
    // Pixtral-12B-sized limit with 28-pixel tokens: 1000 x 3000 -> ratio 2.93, 341.33 -> 341 -> 364.
    expect(sizeForImage(1000, 3000, { longestEdge: 1024, tokenPx: 28 })).toEqual({
      height: 364, width: 1036, rows: 13, cols: 37, tokens: 13 * 38,
    });
  });

  it('rejects bad sizes and options with typed errors', () => {
    expect(() => sizeForImage(0, 10, { longestEdge: 1024, tokenPx: 16 })).toThrow(ImageError);
    expect(() => sizeForImage(10, -1, { longestEdge: 1024, tokenPx: 16 })).toThrow(ImageError);
    expect(() => sizeForImage(10.5, 10, { longestEdge: 1024, tokenPx: 16 })).toThrow(ImageError);
    expect(() => sizeForImage(10, 10, { longestEdge: 0, tokenPx: 16 })).toThrow(LimitError);
    expect(() => sizeForImage(10, 10, { longestEdge: 1024, tokenPx: 0 })).toThrow(LimitError);
    expect(() =>
      sizeForImage(10, 10, { longestEdge: 1024, tokenPx: 16, rounding: 'ceil' as unknown as 'floor' }),
    ).toThrow(LimitError);
  });
});

describe('preprocessOptionsFor', () => {
  it('Pixtral-12B: image_size 1024, patch 16, no merge; a lower longest edge on request', () => {
    expect(preprocessOptionsFor(PIXTRAL_12B_2409)).toEqual({ longestEdge: 1024, patchSize: 16, mergeSize: 1, rounding: undefined });
    expect(preprocessOptionsFor(PIXTRAL_12B_2409, { longestEdge: 512, rounding: 'floor' })).toEqual({
      longestEdge: 512, patchSize: 16, mergeSize: 1, rounding: 'floor',
    });
    expect(() => preprocessOptionsFor(PIXTRAL_12B_2409, { longestEdge: 1025 })).toThrow(LimitError);
    expect(() => preprocessOptionsFor(PIXTRAL_12B_2409, { longestEdge: 0 })).toThrow(LimitError);
  });

  it('mistral3-tiny-a config.json: 224, patch 14 x merge 2', () => {
    const json = JSON.parse(readFileSync(resolve(sharedDir, 'fixtures/mistral3-tiny-a/config.json'), 'utf8')) as Record<string, unknown>;
    const o = preprocessOptionsFor(configFromHf(json));
    expect(o).toMatchObject({ longestEdge: 224, patchSize: 14, mergeSize: 2 });
    // 100 rounds up to 112 = 4 merged tokens = 8 patches <= 224 / 14 = 16: fine.
    expect(preprocessOptionsFor(configFromHf(json), { longestEdge: 100 }).longestEdge).toBe(100);
  });
});
