/**
 * GPU-resident decode steps for the token loop (`src/engine/decode-loop.ts`). One step is one
 * command buffer and one submit: [embed the previous token straight from the sampler's result
 * -> layers at `pos` -> final norm + lm_head] -> sample, all in one compute pass -> copy the token into a ring of staging
 * buffers (read back asynchronously) and into the penalty history on the GPU. The CPU never has
 * to see token k before step k+1 is submitted; it reads tokens as they arrive.
 *
 * Made once per model: the ring's staging buffers and the u32 view of the sampler's result;
 * bind groups and uniform slices are reused by `dispatch` and the uniform arena (`src/gpu/`).
 */
import type { Gpu } from '../gpu/device.js';
import { Tensor } from '../gpu/tensor.js';
import type { PenaltyIds, Sampler, SamplingOptions } from '../kernels/sampling.js';
import type { VisionLanguageModel } from './vlm.js';
import { maskLogits } from '../kernels/logit-mask.js';

/** Steps in flight at most: enough to cover the read-back latency of one step on any adapter. */
export const DECODE_RING = 4;

export interface StepRequest {
  /** Feed the previously sampled token at this position first; null for the step right after prefill. */
  feedPos: number | null;
  sampling: SamplingOptions;
  /** Penalised ids: the first `count` of the history buffer. Absent when the penalty is off. */
  penalty?: PenaltyIds;
  /** Where the sampled token goes in the history buffer (element index), when it is kept. */
  historyAt?: number;
  /** A grammar's allowed-token bitmask [ceil(V / 32)] u32, applied to the logits before sampling. */
  mask?: Tensor;
}

export class DecodeSteps {
  /** [DECODE_RING] x 16 bytes MAP_READ: the sampler's result of step k lands in slot k % DECODE_RING. */
  private readonly ring: GPUBuffer[];
  /** The sampler's 16-byte result seen as u32 [4]; element 0 is the token id the next step embeds. */
  private readonly sampled: Tensor;
  private next = 0;

  constructor(
    private readonly gpu: Gpu,
    private readonly model: VisionLanguageModel,
    private readonly sampler: Sampler,
  ) {
    this.ring = Array.from({ length: DECODE_RING }, (_, i) =>
      gpu.ledger.track(gpu.device.createBuffer({ label: `decode-ring[${i}]`, size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST })),
    );
    this.sampled = new Tensor(gpu, sampler.out, [4], 'u32', 'sampler.out');
  }

  /**
   * Records and submits one step; resolves with its token id once the GPU has it. At most
   * DECODE_RING steps may be unresolved (the caller's window); each must be awaited.
   */
  submit(s: StepRequest): Promise<number> {
    const { gpu, sampler } = this;
    const enc = gpu.device.createCommandEncoder({ label: 'decode-step' });
    // One compute pass: the final norm and lm_head read row 0 in place (no copy between passes).
    const pass = enc.beginComputePass({ label: 'decode-step' });
    this.record({ gpu, pass }, s);
    pass.end();
    const slot = this.ring[this.next++ % DECODE_RING]!;
    enc.copyBufferToBuffer(sampler.out, 0, slot, 0, 16);
    if (s.historyAt !== undefined) enc.copyBufferToBuffer(sampler.out, 0, s.penalty!.ids.buffer, s.historyAt * 4, 4);
    gpu.submit([enc.finish()]);
    const lost = gpu.lost.then((e) => Promise.reject(e));
    return Promise.race([slot.mapAsync(GPUMapMode.READ), lost]).then(() => {
      gpu.check();
      const token = new Uint32Array(slot.getMappedRange(0, 4))[0]!;
      slot.unmap();
      return token;
    });
  }

  /**
   * Records a step's dispatches into `ctx`'s pass (what `submit` sends): the forward pass when
   * `feedPos` is set, the grammar's mask, sampling. The benchmark times this alone (`encode`).
   */
  record(ctx: { gpu: Gpu; pass: GPUComputePassEncoder }, s: Pick<StepRequest, 'feedPos' | 'sampling' | 'penalty' | 'mask'>): void {
    const { model, sampler } = this;
    const dec = model.decoder;
    if (s.feedPos !== null) this.recordForward(ctx, s.feedPos);
    if (s.mask) maskLogits(ctx, dec.logits, s.mask, model.config.text.vocabSize);
    sampler.record(ctx, dec.logits, s.sampling, s.penalty);
  }

  /**
   * Submits the forward half of a step alone: embed the token the last submitted step samples
   * (still on the GPU) at `feedPos`, the layers, the final norm and lm_head into the logits. A
   * grammar's loop sends it right behind step k, so the GPU runs step k+1's layers while the CPU
   * reads token k and computes mask k+1; `submit({ feedPos: null, mask })` then samples.
   */
  forward(feedPos: number): void {
    const enc = this.gpu.device.createCommandEncoder({ label: 'decode-forward' });
    const pass = enc.beginComputePass({ label: 'decode-forward' });
    this.recordForward({ gpu: this.gpu, pass }, feedPos);
    pass.end();
    this.gpu.submit([enc.finish()]);
  }

  private recordForward(ctx: { gpu: Gpu; pass: GPUComputePassEncoder }, feedPos: number): void {
    const dec = this.model.decoder;
    dec.embedGpuToken(ctx, this.sampled);
    dec.layers(ctx, 1, feedPos, this.model.cache);
    dec.decodeLogits(ctx);
  }

  destroy(): void {
    for (const b of this.ring) b.destroy();
  }
}
