/**
 * The vision transformer's layer weights kept in host memory (`visionWeights: 'host'`) and
 * streamed through two layer slots on the GPU: slot s is one layer's worth of GPU buffers, the
 * same sizes as the host-placed buffers of every layer (all layers share their shapes), and
 * `fill(i)` writes layer i's stored bytes, unchanged, into slot i % 2. The encoder submits each
 * layer before the next fill, and `queue.writeBuffer` is ordered with submits, so the write for
 * layer i lands after layer i - 2, the slot's previous user, has been submitted: the same bytes
 * through the same kernels, hence the same output as the resident path.
 */
import { FormatError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import { isHostBuffer, type HostBuffer } from '../gpu/host-buffer.js';
import { createBuffer, Tensor, writeBuffer } from '../gpu/tensor.js';
import type { Linear, LinearWeight } from './linear.js';
import type { VisionLayerWeights } from './vision.js';

/** The layer's buffers with `f` applied, in a fixed order (the same for every layer). */
function mapLayer(l: VisionLayerWeights, f: (b: GPUBuffer) => GPUBuffer): VisionLayerWeights {
  const tensor = (t: Tensor) => new Tensor(t.gpu, f(t.buffer), t.shape, t.dtype, t.label);
  const weight = (w: LinearWeight): LinearWeight => {
    switch (w.kind) {
      case 'dense':
        return { kind: 'dense', w: { ...w.w, parts: w.w.parts.map((p) => ({ ...p, buffer: f(p.buffer) })) } };
      case 'q4':
        return { kind: 'q4', w: { ...w.w, parts: w.w.parts.map((p) => ({ ...p, qweight: f(p.qweight), scales: f(p.scales) })) } };
      case 'gguf':
        return { kind: 'gguf', w: { ...w.w, parts: w.w.parts.map((p) => ({ ...p, data: f(p.data) })) } };
    }
  };
  const linear = (x: Linear): Linear => ({ ...x, weight: weight(x.weight), bias: x.bias && tensor(x.bias) });
  return {
    attentionNorm: tensor(l.attentionNorm),
    q: linear(l.q),
    k: linear(l.k),
    v: linear(l.v),
    o: linear(l.o),
    ffnNorm: tensor(l.ffnNorm),
    gate: linear(l.gate),
    up: linear(l.up),
    down: linear(l.down),
  };
}

/** The buffers a layer binds, in `mapLayer`'s order, each once. */
export function layerBuffers(l: VisionLayerWeights): GPUBuffer[] {
  const seen: GPUBuffer[] = [];
  mapLayer(l, (b) => {
    if (!seen.includes(b)) seen.push(b);
    return b;
  });
  return seen;
}

/** Whether every buffer of the layers is host-placed (true), none is (false); mixed is an error. */
export function layersOnHost(layers: readonly VisionLayerWeights[]): boolean {
  const all = layers.flatMap(layerBuffers);
  const host = all.filter(isHostBuffer).length;
  if (host && host !== all.length) throw new FormatError(`vision layers: ${host} of ${all.length} weight buffers are in host memory; all or none must be`);
  return host > 0;
}

export class VisionLayerSlots {
  /** Layer weights bound to each slot's GPU buffers. */
  readonly slots: VisionLayerWeights[];
  private readonly buffers: GPUBuffer[][];
  /** Host bytes of each layer, in `layerBuffers` order. */
  private readonly host: HostBuffer[][];

  constructor(
    private readonly gpu: Gpu,
    layers: readonly VisionLayerWeights[],
  ) {
    this.host = layers.map((l) => layerBuffers(l) as unknown as HostBuffer[]);
    const sizes = this.host[0]!.map((b) => b.size);
    this.host.forEach((bufs, i) => {
      if (bufs.length !== sizes.length || bufs.some((b, k) => b.size !== sizes[k])) {
        throw new FormatError(`vision layer ${i}: its weights are not laid out like layer 0's, so they cannot share its slots`);
      }
    });
    this.buffers = [0, 1].slice(0, Math.min(2, layers.length)).map((s) => this.host[0]!.map((b, k) => createBuffer(gpu, b.size, `vision.slot${s}.${k}`)));
    this.slots = this.buffers.map((bufs) => {
      const first = layerBuffers(layers[0]!);
      return mapLayer(layers[0]!, (b) => bufs[first.indexOf(b)]!);
    });
  }

  get layerCount(): number {
    return this.host.length;
  }

  /** GPU bytes of one slot (one layer's weights). */
  get slotBytes(): number {
    return this.buffers[0]!.reduce((a, b) => a + b.size, 0);
  }

  /** Queues the upload of layer i's bytes into slot i % 2; returns that slot's weights. */
  fill(i: number): VisionLayerWeights {
    const s = i % this.buffers.length;
    this.host[i]!.forEach((h, k) => writeBuffer(this.gpu, this.buffers[s]![k]!, 0, h.bytes));
    return this.slots[s]!;
  }

  destroy(): void {
    for (const bufs of this.buffers) for (const b of bufs) b.destroy();
  }
}

/** Whether a weight buffer's label names a vision transformer layer's tensor (what `visionWeights: 'host'` keeps in host memory). */
export function isVisionLayerLabel(label: string): boolean {
  return /^vision_tower\.transformer\.layers\.\d+\./.test(label);
}
