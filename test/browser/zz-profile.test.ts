import { it } from 'vitest';
import { loadModel, releaseModel } from '../../src/engine/load.js';
import { decodeLoop } from '../../src/engine/decode-loop.js';
import { resolveSampling } from '../../src/model/sampler.js';
import { DecodeSteps } from '../../src/model/decode-steps.js';

it('profile', async () => {
  const l = await loadModel({ url: '/models/pixtral-tiny-screens-q4/' });
  const m = l.model;
  const c = m.config.tokens;
  const ids = [c.bos, c.inst, ...Array.from({ length: 16 }, (_, i) => 1000 + i), c.instEnd];
  const turn = { ids, images: [] };
  const sampling = resolveSampling({ temperature: 0 });
  const N = 64;
  const log: string[] = [];
  const loop = async (window: number) => {
    m.cache.truncate(0);
    const times: number[] = [];
    const out = await decodeLoop(l, { turn, sampling, maxTokens: N + 1, returnLogits: false, ignoreEos: true, window, emit: () => { times.push(performance.now()); return false; } });
    const ms = (times.at(-1)! - times[0]!) / (times.length - 1);
    log.push(`loop window ${window}: ${ms.toFixed(2)} ms/token, cpu ${(out.profile.cpuMs / out.profile.steps).toFixed(2)} ms/step, dispatches/step ${(out.profile.dispatches / out.profile.steps).toFixed(1)}`);
  };
  await loop(4);
  for (const w of [4, 2, 1, 4]) await loop(w);
  // Steps back to back, no read-back waits in between: N submits then wait for the last one.
  const steps = new DecodeSteps(l.gpu, m, l.sampler);
  const gs = { temperature: 0, topK: 40, topP: 1, repetitionPenalty: 1, u: 0 };
  for (let rep = 0; rep < 3; rep++) {
    m.cache.truncate(0);
    await m.prefill(turn, { returnLogits: false });
    const t0 = performance.now();
    let last: Promise<number> = Promise.resolve(0);
    let enc = 0;
    for (let k = 0; k < N; k++) {
      const te = performance.now();
      last = steps.submit({ feedPos: k ? ids.length + k - 1 : null, sampling: gs });
      enc += performance.now() - te;
      if (k % 4 === 3) await last; // ring of 4
    }
    await last;
    const t1 = performance.now();
    log.push(`steps, ring waits every 4: ${((t1 - t0) / N).toFixed(2)} ms/step, encode+submit ${(enc / N).toFixed(2)} ms`);
  }
  // The same work as one command buffer per 8 steps (no mapAsync): GPU-bound time per step.
  for (let rep = 0; rep < 3; rep++) {
    m.cache.truncate(0);
    await m.prefill(turn, { returnLogits: false });
    const dec = m.decoder;
    const t0 = performance.now();
    for (let k = 0; k < N; k++) {
      const e = l.gpu.device.createCommandEncoder();
      const pass = e.beginComputePass();
      const ctx = { gpu: l.gpu, pass };
      dec.embedGpuToken(ctx, (steps as unknown as { sampled: import('../../src/gpu/tensor.js').Tensor }).sampled);
      dec.layers(ctx, 1, ids.length + k, m.cache);
      dec.finalNorm(ctx, 1);
      pass.end();
      dec.copyLastRow(e, 1);
      const p2 = e.beginComputePass();
      dec.lastLogits({ gpu: l.gpu, pass: p2 });
      l.sampler.record({ gpu: l.gpu, pass: p2 }, dec.logits, gs);
      p2.end();
      l.gpu.submit([e.finish()]);
    }
    await l.gpu.device.queue.onSubmittedWorkDone();
    log.push(`submits only, no read-back: ${((performance.now() - t0) / N).toFixed(2)} ms/step`);
  }
  // All N steps in one pass, one submit.
  for (let rep = 0; rep < 3; rep++) {
    m.cache.truncate(0);
    await m.prefill(turn, { returnLogits: false });
    const dec = m.decoder;
    const t0 = performance.now();
    const e = l.gpu.device.createCommandEncoder();
    const pass = e.beginComputePass();
    const ctx = { gpu: l.gpu, pass };
    for (let k = 0; k < N; k++) {
      dec.embedGpuToken(ctx, (steps as unknown as { sampled: import('../../src/gpu/tensor.js').Tensor }).sampled);
      dec.layers(ctx, 1, ids.length + k, m.cache);
      dec.finalNorm(ctx, 1);
      dec.lastLogits(ctx);
      l.sampler.record(ctx, dec.logits, gs);
    }
    pass.end();
    l.gpu.submit([e.finish()]);
    await l.gpu.device.queue.onSubmittedWorkDone();
    log.push(`one pass, one submit: ${((performance.now() - t0) / N).toFixed(2)} ms/step`);
  }
  console.log(log.join('\n'));
  releaseModel(l);
}, 600_000);
