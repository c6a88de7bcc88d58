/**
 * The decoder's KV cache: per layer K and V [maxContext, kvHeads * headDim], plus a key per
 * cached position, so a follow-up turn whose prompt extends the previous one reuses every cached
 * position (the image is not encoded again, earlier turns are not prefilled again). A text
 * position's key is its token id; an image position's key names the image's content, because
 * every `[IMG]` token has the same id and two images with one grid must not be confused.
 */
import type { TextConfig } from '../config.js';
import type { Gpu } from '../gpu/device.js';
import { createKvCache, destroyKvCache, kvCacheLayerBytes, type KvCache as LayerCache } from '../kernels/attention.js';

/**
 * Element type of the cache under the decoder's f32 activations. `'f16'` halves the cache's
 * memory and the bandwidth of decode attention on every adapter (halves packed in u32 pairs, no
 * `shader-f16` needed); keys and values are rounded to half once, when written.
 */
export type KvCacheStorage = 'f32' | 'f16';

/** Token id, or `<image hash>:<index>` for a position holding image features. */
export type TokenKey = number | string;

export class KvCache {
  /** Per layer: k and v [maxContext, kvHeads, headDim] of `storage` elements. */
  readonly layers: LayerCache[];
  /** What each cached position holds, position i at index i. */
  keys: TokenKey[] = [];

  constructor(gpu: Gpu, config: TextConfig, readonly maxContext: number, readonly storage: KvCacheStorage = 'f32') {
    this.layers = Array.from({ length: config.numLayers }, (_, i) =>
      createKvCache(gpu, maxContext, config.numKvHeads, config.headDim, 'f32', `kv${i}`, storage),
    );
  }

  /** Bytes the cache takes: layers x 2 x maxContext x kvHeads x headDim x (4 f32 | 2 f16). */
  static bytes(config: TextConfig, maxContext: number, storage: KvCacheStorage = 'f32'): number {
    return config.numLayers * kvCacheLayerBytes(maxContext, config.numKvHeads, config.headDim, storage);
  }

  get length(): number {
    return this.keys.length;
  }

  /**
   * How many leading positions of `keys` the cache already holds. Positions past a mismatch
   * are stale and get overwritten. At least one position is always left to run, so the step
   * that follows has logits to sample from.
   */
  reusablePrefix(keys: readonly TokenKey[]): number {
    const n = Math.min(this.keys.length, keys.length - 1);
    let i = 0;
    while (i < n && this.keys[i] === keys[i]) i++;
    return i;
  }

  /** Forgets positions from `length` on. */
  truncate(length: number): void {
    this.keys.length = Math.min(this.keys.length, length);
  }

  destroy(): void {
    for (const l of this.layers) destroyKvCache(l);
  }
}
