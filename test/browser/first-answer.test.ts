/**
 * The first answer costs what later ones do (issue 11, §5): `loadModel` compiles every pipeline
 * the model will dispatch during load (`compileModelPipelines`, src/model/pipelines.ts). A
 * pipeline the plan misses is still built on first use, silently, inside the user's first answer
 * (on SwiftShader ~90 ms for the decode step's fused norm + lm_head, which the plan once missed):
 * so after load, turns of every kind the engine runs (a large and a one-token image, greedy,
 * sampled with a repetition penalty, and a response_format's masked steps) must build none. The
 * runtime counts pipelines; the turns run for real on the embedded model.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadModel, releaseModel, type LoadedModel } from '../../src/engine/load.js';
import { pixelKey, type PreparedTurn } from '../../src/engine/turn.js';
import { imageTokenIds } from '../../src/text/prompt.js';
import { runTurn, type TurnOptions } from '../helpers/decode.js';

let l: LoadedModel;
beforeAll(async () => {
  l = await loadModel({ url: '/scratch/models/pixtral-tiny-screens-q4/', maxContext: 256 });
});
afterAll(() => l && releaseModel(l));

/** [BOS][INST] image of rows x cols tokens, a few text ids [/INST]. */
function imageTurn(rows: number, cols: number): PreparedTurn {
  const t = l.model.config.tokens;
  const px = l.model.tokenPixels;
  const image = { pixels: new Float32Array(3 * rows * px * cols * px).fill(0.25), height: rows * px, width: cols * px };
  const ids = [t.bos, t.inst, ...imageTokenIds(rows, cols, t), 1100, 1200, 1300, t.instEnd];
  return { ids, images: [{ start: 2, rows, cols, image, key: pixelKey(image) }] };
}

const answer = (turn: PreparedTurn, opts: TurnOptions = {}) => runTurn(l, turn, { maxTokens: 6, ...opts });

it('answers of every kind after load build no pipeline', async () => {
  const built = l.gpu.pipelines.size;
  expect(built).toBeGreaterThan(10);
  await answer(imageTurn(3, 4));
  await answer(imageTurn(1, 1));
  await answer(imageTurn(2, 2), { sampling: { temperature: 0.8, topP: 0.9, topK: 20, repetitionPenalty: 1.2, seed: 7 } });
  // A response_format's steps: the forward alone, then the mask and sampling (window 1).
  const everything = new Uint32Array(Math.ceil(l.model.config.text.vocabSize / 32)).fill(0xffffffff);
  await answer(imageTurn(2, 3), { constraint: { mask: async () => everything, accept: () => {} } });
  expect(l.gpu.pipelines.size, 'pipelines built after load, inside answers').toBe(built);
});
