import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { configFromHf, configFromNative, tokenPixels } from '../../src/config.js';
import { FormatError } from '../../src/errors.js';
import { sharedDir } from '../fixture-server.js';

const read = (p: string) => JSON.parse(readFileSync(resolve(sharedDir, p), 'utf8'));

describe('config parsing', () => {
  it('gives the same config from the HF and native layouts of pixtral-tiny-a', () => {
    const hf = configFromHf(read('fixtures/pixtral-tiny-a/config.json'));
    const native = configFromNative(read('fixtures/pixtral-tiny-a/native/params.json'));
    // params.json carries no max_position_embeddings (the native format leaves it to the
    // runtime), so only that field may differ; the context cap comes from memory anyway.
    expect({ ...native, text: { ...native.text, maxPositionEmbeddings: 0 } }).toEqual({ ...hf, text: { ...hf.text, maxPositionEmbeddings: 0 } });
    expect(hf.text.numHeads * hf.text.headDim).toBe(128); // q dim != hidden 96
    expect(hf.text.hiddenSize).toBe(96);
    expect(hf.projector).toEqual({ spatialMergeSize: 1, bias: true, hiddenAct: 'gelu' });
    expect(tokenPixels(hf)).toBe(16);
  });

  it('parses the mistral3 fixture with YaRN and the llama-4 query scale', () => {
    const c = configFromHf(read('fixtures/mistral3-tiny-a/config.json'));
    expect(c.modelType).toBe('mistral3');
    expect(c.projector).toEqual({ spatialMergeSize: 2, bias: false, hiddenAct: 'gelu' });
    expect(tokenPixels(c)).toBe(28);
    expect(c.text.ropeTheta).toBe(100);
    expect(c.text.rope).toEqual({
      type: 'yarn', factor: 16, originalMaxPositionEmbeddings: 16, betaFast: 1, betaSlow: 0.125,
      mscale: 1, mscaleAllDim: 0.5, llama4ScalingBeta: 0.3,
    });
  });

  it('refuses other model types and missing fields with FormatError', () => {
    expect(() => configFromHf({ model_type: 'llama' })).toThrow(FormatError);
    const broken = read('fixtures/pixtral-tiny-a/config.json');
    delete broken.text_config.hidden_size;
    expect(() => configFromHf(broken)).toThrow(/hidden_size/);
  });
});
