/**
 * The GPU-resident decode loop (src/engine/decode-loop.ts + src/model/decode-steps.ts) on the
 * golden fixture model pixtral-tiny-a (f32, through the real loader): greedy tokens equal the
 * goldens whatever the window; steps run ahead of the CPU; one submit and nothing created per
 * token (counted by the runtime's ledger); a stop discards the steps computed past it and leaves
 * the cache consistent; seeded sampling is the same in every window; the repetition penalty's
 * history, kept on the GPU, gives the tokens a CPU reference gives.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, releaseModel, type LoadedModel } from '../../src/engine/load.js';
import { decodeLoop } from '../../src/engine/decode-loop.js';
import { DECODE_RING } from '../../src/model/decode-steps.js';
import { resolveSampling } from '../../src/model/sampler.js';
import { prepareGenerate, type PreparedTurn } from '../../src/engine/turn.js';
import { argmax, loadCase, type GoldenCase } from '../golden/cases.js';
import { runTurn, type TurnOptions } from '../helpers/decode.js';

let l: LoadedModel;
let c: GoldenCase;
let turn: PreparedTurn;

beforeAll(async () => {
  l = await loadModel({ url: '/scratch/models/pixtral-tiny-a-f32/', maxContext: 96 });
  c = await loadCase('pixtral-tiny-a', 'one_image_wide');
  const px = c.inputs['pixel_values.0']!;
  const [, height, width] = px.shape as [number, number, number];
  turn = prepareGenerate({ inputIds: c.json.input_ids, images: [{ pixels: px.data as Float32Array, height, width }] }, l.model.config, l.model.tokenPixels);
});

afterAll(() => l && releaseModel(l));

/** Runs one fresh turn (empty cache) of `t` and collects the emitted tokens. */
const run = (opts: TurnOptions = {}, t = turn) => runTurn(l, t, opts);

describe('GPU-resident decode loop', () => {
  it('gives the golden greedy tokens with the token kept on the GPU, in every window', async () => {
    // The golden's 8 greedy tokens contain no EOS.
    for (const window of [DECODE_RING, 2, 1]) {
      const r = await run({ window });
      expect(r.tokens, `window ${window}`).toEqual(c.json.greedy_tokens);
      expect(r.stats.finishReason).toBe('length');
    }
  });

  it('submits steps ahead of the tokens the CPU has seen', async () => {
    const submitsAtFirstToken = async (window: number) => {
      let atFirst = -1;
      l.model.cache.truncate(0);
      const before = l.gpu.ledger.submits;
      await decodeLoop(l, {
        turn, sampling: resolveSampling({ temperature: 0 }), maxTokens: 8, returnLogits: false, window,
        emit: (tok) => {
          if (atFirst < 0) atFirst = l.gpu.ledger.submits - before;
          return tok < 0;
        },
      });
      return atFirst;
    };
    // Same prefill in both runs: the difference is the steps in flight when token 0 arrives.
    const one = await submitsAtFirstToken(1);
    const ring = await submitsAtFirstToken(DECODE_RING);
    expect(ring - one).toBe(DECODE_RING - 1);
  });

  it('with a per-step mask (a grammar), submits step k+1\'s forward before asking for its mask', async () => {
    const V = l.model.config.text.vocabSize;
    const everyToken = new Uint32Array(Math.ceil(V / 32)).fill(0xffffffff);
    const g = l.gpu.ledger;
    const submitsAtMask: number[] = [];
    const accepted: number[] = [];
    // Allows every token, so the answer must be the golden's greedy one; counts what the GPU was
    // given by the time each mask is asked for.
    const constraint = {
      mask: async () => {
        submitsAtMask.push(g.submits);
        return everyToken;
      },
      accept: (t: number) => void accepted.push(t),
    };
    const r = await run({ constraint, maxTokens: 8 });
    expect(r.tokens).toEqual(c.json.greedy_tokens);
    expect(accepted).toEqual(c.json.greedy_tokens);
    // Between mask k and mask k+1: step k's sampling and step k+1's forward (two submits), so the
    // forward is on the GPU while mask k+1 is computed (one submit if it waited for the mask).
    const gaps = submitsAtMask.slice(1).map((n, i) => n - submitsAtMask[i]!);
    expect(gaps).toEqual(Array(7).fill(2));
  });

  it('uses one submit per token and creates no buffer or bind group once warm', async () => {
    await run({ maxTokens: 8 }); // warm: pipelines, bind groups, ring
    const g = l.gpu.ledger;
    const snap = () => ({ submits: g.submits, groups: g.bindGroupsCreated, buffers: g.buffersCreated, dispatches: g.dispatches });
    const a0 = snap();
    const a = await run({ maxTokens: 4 });
    const a1 = snap();
    const b = await run({ maxTokens: 8 });
    const b1 = snap();
    expect(a.profile.steps).toBe(4);
    expect(b.profile.steps).toBe(8);
    // Same prompt and prefill: four more tokens cost exactly four more submits.
    expect(b1.submits - a1.submits - (a1.submits - a0.submits)).toBe(4);
    expect(a1.groups - a0.groups).toBe(0);
    expect(b1.groups - a1.groups).toBe(0);
    expect(b1.buffers - a0.buffers).toBe(0);
  });

  it('discards the steps computed past a stop and keeps the cache consistent', async () => {
    const gold = c.json.greedy_tokens as number[];
    const r = await run({ maxTokens: 8, emit: (tok) => tok === gold[2] });
    expect(r.tokens).toEqual(gold.slice(0, 3));
    expect(r.stats.finishReason).toBe('stop');
    expect(r.profile.steps).toBeGreaterThan(3); // ran ahead of the stop
    const S = turn.ids.length;
    // As before the loop ran ahead: the cache keeps the prompt and the tokens fed, not the last.
    expect(l.model.cache.length).toBe(S + 2);
    // A follow-up that extends the prompt by the three tokens reuses the cache and continues
    // exactly as the golden does, although a discarded step wrote past position S + 2.
    const next: PreparedTurn = { ids: [...turn.ids, ...gold.slice(0, 3)], images: turn.images };
    const tokens: number[] = [];
    const out = await decodeLoop(l, {
      turn: next, sampling: resolveSampling({ temperature: 0 }), maxTokens: 2, returnLogits: false,
      emit: (tok) => (tokens.push(tok), false),
    });
    expect(out.stats.reusedTokens).toBe(S + 2);
    expect(tokens).toEqual(gold.slice(3, 5));
  });

  it('samples the same tokens from the same seed in every window', async () => {
    const sampling = { temperature: 1.5, topK: 40, seed: 7 };
    const a = await run({ sampling, window: 1 });
    const b = await run({ sampling, window: DECODE_RING });
    const d = await run({ sampling: { ...sampling, seed: 8 }, window: DECODE_RING });
    expect(b.tokens).toEqual(a.tokens);
    expect(d.tokens).not.toEqual(a.tokens); // the seed matters (8 tokens from a 2048 vocabulary)
  });

  it('applies the repetition penalty over a history kept on the GPU, as a CPU reference does', async () => {
    // Below 1 the penalty favours ids already seen (positive logits x 1/0.3), so the history,
    // prompt and generated tokens alike, decides every step: a wrong history changes tokens.
    const penalty = 0.3;
    const r = await run({ sampling: { repetitionPenalty: penalty }, maxTokens: 6 });
    // Reference: prefill the growing prompt, penalise every id seen (Hugging Face rule), argmax.
    const V = l.model.config.text.vocabSize;
    const ids = turn.ids.slice();
    const want: number[] = [];
    for (let k = 0; k < 6; k++) {
      l.model.cache.truncate(0);
      const pre = await l.model.prefill({ ids, images: turn.images }, { returnLogits: true });
      const logits = pre.logits!.slice((ids.length - 1) * V, ids.length * V);
      for (const id of new Set(ids)) logits[id] = logits[id]! > 0 ? logits[id]! / penalty : logits[id]! * penalty;
      const tok = argmax(logits);
      want.push(tok);
      ids.push(tok);
    }
    expect(r.tokens).toEqual(want);
    expect(r.tokens).not.toEqual((c.json.greedy_tokens as number[]).slice(0, 6)); // the penalty changed something
  });
});

describe('decode fusions on a q4 model', () => {
  it('give bit-identical logits and the same greedy tokens as the unfused kernels', async () => {
    const q = await loadModel({ url: '/scratch/models/pixtral-tiny-a-q4/', maxContext: 96 });
    try {
      const t = prepareGenerate(
        { inputIds: c.json.input_ids, images: turn.images.map((im) => im.image) },
        q.model.config,
        q.model.tokenPixels,
      );
      const runQ4 = async (fuse: boolean) => {
        q.model.decoder.fuseDecode = fuse;
        q.model.cache.truncate(0);
        const tokens: number[] = [];
        await decodeLoop(q, { turn: t, sampling: resolveSampling({ temperature: 0 }), maxTokens: 8, returnLogits: false, emit: (tok) => (tokens.push(tok), false) });
        return { tokens, logits: await q.model.readLogits() };
      };
      const fused = await runQ4(true);
      const plain = await runQ4(false);
      expect(q.model.decoder.decodeFusions()).toEqual({ qkv: true, gateUp: true });
      expect(fused.tokens).toEqual(plain.tokens);
      // The last step computed (possibly one past the end) left its logits: equal to the bit.
      expect(fused.logits).toEqual(plain.logits);
    } finally {
      releaseModel(q);
    }
  });
});
