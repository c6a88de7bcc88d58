/**
 * Decode-step helpers shared by the tests that compare the fused decode path with the unfused
 * kernels (test/kernels/fused.test.ts for q4 and dense weights, gguf-fused.test.ts for GGUF
 * blocks): greedy steps after a fresh prefill, the logit comparison, and the runtime's dispatch
 * count of one step's layers; and one fresh turn through the engine's decode loop (the
 * decode-loop and first-answer tests).
 */
import { expect } from 'vitest';
import type { Gpu } from '../../src/gpu/device.js';
import type { PrefillInput, VisionLanguageModel } from '../../src/model/vlm.js';
import { argmax } from '../golden/cases.js';
import { decodeLoop, type DecodeRequest, type DecodeTarget } from '../../src/engine/decode-loop.js';
import type { PreparedTurn } from '../../src/engine/turn.js';
import { resolveSampling } from '../../src/model/sampler.js';

export type TurnOptions = Omit<Partial<DecodeRequest>, 'sampling' | 'turn'> & { sampling?: Parameters<typeof resolveSampling>[0] };

/**
 * One fresh turn (empty cache) through `decodeLoop`: greedy unless `sampling` says otherwise, 8
 * tokens at most by default; collects the emitted tokens (`emit` still decides when to stop).
 */
export async function runTurn(l: DecodeTarget, turn: PreparedTurn, opts: TurnOptions = {}) {
  l.model.cache.truncate(0);
  const tokens: number[] = [];
  const { sampling, emit, ...rest } = opts;
  const out = await decodeLoop(l, {
    turn,
    sampling: resolveSampling({ temperature: 0, ...sampling }),
    maxTokens: 8,
    returnLogits: false,
    ...rest,
    emit: (tok) => {
      tokens.push(tok);
      return emit?.(tok) ?? false;
    },
  });
  return { tokens, ...out };
}

/**
 * `steps` greedy tokens after a fresh prefill of `prompt` (returnLogits: no cache reuse), with the
 * decode fusions on or off (`Decoder.fuseDecode`, left on afterwards): the ids and each step's logits.
 */
export async function greedyDecode(m: VisionLanguageModel, prompt: PrefillInput, steps: number, fuse: boolean) {
  m.decoder.fuseDecode = fuse;
  try {
    await m.prefill(prompt, { returnLogits: true });
    const ids: number[] = [];
    const logits: Float32Array[] = [];
    let last = await m.readLogits();
    for (let s = 0; s < steps; s++) {
      ids.push(argmax(last));
      m.append(ids[s]!);
      last = await m.readLogits();
      logits.push(last);
    }
    return { ids, logits };
  } finally {
    m.decoder.fuseDecode = true;
  }
}

/**
 * Logits of the fused decode against the unfused kernels', step by step. f32 everywhere and the
 * same sums in the same order: exactly equal on SwiftShader. Other compilers may contract the
 * folded RMSNorm's last multiply into the matvec's next add (an FMA; lavapipe does), which the
 * unfused kernel, reading a stored value, cannot: there the logits agree to 1e-5 of their RMS
 * (observed ~1e-7: a few f32 ulps carried through the layers; a wrong norm weight, scale or
 * offset changes them by O(RMS)).
 */
export function expectSameLogits(gpu: Gpu, fused: Float32Array[], plain: Float32Array[]): void {
  fused.forEach((l, s) => {
    const p = plain[s]!;
    if (gpu.adapterInfo.architecture === 'swiftshader') {
      expect(Array.from(l), `step ${s}`).toEqual(Array.from(p));
      return;
    }
    const rms = Math.sqrt(p.reduce((a, v) => a + v * v, 0) / p.length);
    l.forEach((v, i) => {
      if (!(Math.abs(v - p[i]!) <= 1e-5 * rms)) expect.fail(`step ${s} logit ${i}: fused ${v} vs unfused ${p[i]} (RMS ${rms})`);
    });
  });
}

/** Dispatches one decode step's layers record at position `pos`, all layers together (recorded, never submitted). */
export function stepDispatches(gpu: Gpu, m: VisionLanguageModel, pos: number): number {
  const before = gpu.ledger.dispatches;
  const enc = gpu.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  m.decoder.layers({ gpu, pass }, 1, pos, m.cache);
  pass.end();
  return gpu.ledger.dispatches - before;
}
