/**
 * Manifest validation: a config that would allocate garbage or never stop, and file names that
 * would fetch from outside the model folder, are FormatErrors naming the culprit, before any
 * download or allocation.
 */
import { describe, expect, it } from 'vitest';
import { PIXTRAL_12B_2409 } from '../../src/config.js';
import { FormatError } from '../../src/errors.js';
import { isPlainFileName, MANIFEST_FORMAT, MANIFEST_VERSION, validateManifest, type Manifest } from '../../src/weights/manifest.js';

const HASH = 'a'.repeat(64);

function manifest(): Manifest {
  return structuredClone({
    format: MANIFEST_FORMAT,
    formatVersion: MANIFEST_VERSION,
    name: 'unit',
    dtype: 'f32',
    config: PIXTRAL_12B_2409,
    tokenizer: { file: 'tekken.json', kind: 'tekken', byteLength: 10, sha256: HASH, version: 'v3' },
    tensors: [{ name: 'language_model.model.norm.weight', dtype: 'f32', shape: [4], data: [{ shard: 0, offset: 0, byteLength: 16 }] }],
    shards: [{ name: 'shard-00000.bin', byteLength: 256, sha256: HASH }],
    totalBytes: 256,
  });
}

/** The FormatError message of validating `manifest()` after `edit`. */
function refused(edit: (m: Manifest & Record<string, any>) => void): string {
  const m = manifest();
  edit(m as Manifest & Record<string, any>);
  let err: unknown;
  try {
    validateManifest(m);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(FormatError);
  return (err as Error).message;
}

describe('validateManifest', () => {
  it('accepts a well-formed manifest', () => {
    expect(validateManifest(manifest()).config.text.numLayers).toBe(40);
  });

  it('refuses non-positive or non-integer dimensions and layer counts, by path', () => {
    expect(refused((m) => (m.config.text.numLayers = -1))).toMatch(/config\.text\.numLayers is -1, not a positive integer/);
    expect(refused((m) => (m.config.text.numLayers = 0))).toMatch(/config\.text\.numLayers is 0/);
    expect(refused((m) => (m.config.vision.hiddenSize = 1024.5))).toMatch(/config\.vision\.hiddenSize is 1024\.5/);
    expect(refused((m) => ((m.config.text as any).vocabSize = '131072'))).toMatch(/config\.text\.vocabSize is "131072"/);
    expect(refused((m) => delete (m.config.text as any).headDim)).toMatch(/config\.text\.headDim is missing/);
    // JSON turns NaN into null.
    expect(refused((m) => ((m.config.text as any).maxPositionEmbeddings = null))).toMatch(/maxPositionEmbeddings is null/);
    expect(refused((m) => (m.config.text.normEps = 0))).toMatch(/config\.text\.normEps is 0, not a positive number/);
    expect(refused((m) => (m.config.projector.spatialMergeSize = 0))).toMatch(/spatialMergeSize/);
    expect(refused((m) => (m.config.text.numKvHeads = 7))).toMatch(/numHeads 32 is not a multiple of numKvHeads 7/);
    expect(refused((m) => ((m.config as any).modelType = 'llama'))).toMatch(/modelType "llama"/);
    expect(refused((m) => delete (m as any).config)).toMatch(/config is missing/);
  });

  it('refuses special-token ids outside the vocabulary', () => {
    expect(refused((m) => (m.config.tokens.eos = 131072))).toMatch(/config\.tokens\.eos is 131072, not a token id inside the vocabulary of 131072/);
    expect(refused((m) => (m.config.tokens.bos = -1))).toMatch(/config\.tokens\.bos is -1/);
    expect(refused((m) => (m.config.tokens.img = 10.5))).toMatch(/config\.tokens\.img is 10\.5/);
    expect(refused((m) => delete (m.config.tokens as any).imgEnd)).toMatch(/config\.tokens\.imgEnd is missing/);
    expect(refused((m) => (m.config.text.vocabSize = 12))).toMatch(/config\.tokens\.imgBreak is 12, not a token id inside the vocabulary of 12/);
  });

  it('accepts only plain file names inside the model folder for shards and the tokenizer', () => {
    for (const bad of ['..', '.', '../x', 'a/b', 'a\\b', '/etc/passwd', 'https://other.host/x', '%2e%2e', '.hidden', '', 'C:x']) {
      expect(isPlainFileName(bad), bad).toBe(false);
    }
    for (const ok of ['shard-00000.bin', 'tekken.json', 'tokenizer.json', 'a..b']) expect(isPlainFileName(ok), ok).toBe(true);
    expect(refused((m) => (m.shards[0]!.name = '..'))).toMatch(/shard name "\.\." is not a plain file name inside the model folder/);
    expect(refused((m) => (m.tokenizer!.file = '../x'))).toMatch(/tokenizer file "\.\.\/x" is not a plain file name/);
    expect(refused((m) => (m.tokenizer!.file = 'https://other.host/x'))).toMatch(/tokenizer file "https:\/\/other\.host\/x"/);
    expect(refused((m) => (m.tokenizer!.file = 'shard-00000.bin'))).toMatch(/has the name of another file/);
    expect(refused((m) => m.shards.push({ ...m.shards[0]! }))).toMatch(/listed twice/);
  });

  it('checks the tokenizer entry like a shard, and the sizes add up', () => {
    expect(refused((m) => (m.tokenizer!.sha256 = 'xyz'))).toMatch(/tokenizer tekken\.json: bad sha256/);
    expect(refused((m) => (m.tokenizer!.byteLength = -3))).toMatch(/tokenizer tekken\.json: bad byteLength/);
    expect(refused((m) => ((m.tokenizer as any).version = 7))).toMatch(/tokenizer version 7/);
    expect(refused((m) => delete (m as any).tokenizer)).toMatch(/missing tokenizer/);
    expect(refused((m) => (m.totalBytes = 1))).toMatch(/totalBytes 1 is not the sum of the shard sizes, 256/);
    expect(refused((m) => (m.tensors[0]!.data[0]!.offset = 250))).toMatch(/bad data segments/);
    const none = manifest();
    none.tokenizer = null;
    expect(validateManifest(none).tokenizer).toBeNull();
  });
});
