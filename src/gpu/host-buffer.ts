/**
 * Weights placed in host memory instead of on the GPU (the `visionWeights: 'host'` load option).
 * While a placement rule is active for a device (`placeOnHost`), `createBuffer` answers a label
 * the rule selects with a `HostBuffer`, an ArrayBuffer of the same size, and `writeBuffer` into
 * it copies the bytes there: every loader (converted models, GGUF pairs) lays out host-placed
 * tensors exactly as it would on the GPU (same dtype, row parts, padding), so their bytes can be
 * written later, unchanged, into GPU buffers of the same sizes (`src/model/vision-slots.ts`).
 * A HostBuffer is never bound: the ledger does not count it and the GPU never sees it.
 */
import type { Gpu } from './device.js';

export class HostBuffer {
  readonly bytes: Uint8Array;
  constructor(
    readonly size: number,
    readonly label: string,
  ) {
    this.bytes = new Uint8Array(size);
  }

  /** Nothing to free on the GPU; the bytes go with the last reference. */
  destroy(): void {}
}

const rules = new WeakMap<Gpu, (label: string) => boolean>();

/** Runs `load` with the buffers whose label `onHost` selects placed in host memory. */
export async function placeOnHost<T>(gpu: Gpu, onHost: (label: string) => boolean, load: () => Promise<T>): Promise<T> {
  rules.set(gpu, onHost);
  try {
    return await load();
  } finally {
    rules.delete(gpu);
  }
}

/** A HostBuffer of `size` bytes when the device's placement rule selects `label`, else undefined. */
export function hostBufferFor(gpu: Gpu, label: string, size: number): HostBuffer | undefined {
  return rules.get(gpu)?.(label) ? new HostBuffer(size, label) : undefined;
}

/** Whether a weight's buffer was placed in host memory. */
export function isHostBuffer(b: unknown): b is HostBuffer {
  return b instanceof HostBuffer;
}
