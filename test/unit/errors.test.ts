import { describe, expect, it } from 'vitest';
import { AbortError, ContextLengthError, PixtralError, QuotaError, reviveError, serializeError } from '../../src/errors.js';

describe('typed errors across a structured clone', () => {
  it('revives the class and fields from the code', () => {
    const e = reviveError(structuredClone(serializeError(new QuotaError(2e9, 1e9))));
    expect(e).toBeInstanceOf(QuotaError);
    expect(e).toBeInstanceOf(PixtralError);
    expect((e as QuotaError).neededBytes).toBe(2e9);
    expect(e.name).toBe('QuotaError');
    expect(e.message).toMatch(/2\.0 GB needed/);
  });

  it('does not depend on class names, which minifiers rename', () => {
    const s = serializeError(new ContextLengthError(5000, 4096));
    const r = reviveError({ ...s, name: 'D' });
    expect(r).toBeInstanceOf(ContextLengthError);
    expect((r as ContextLengthError).maxTokens).toBe(4096);
    expect(new AbortError().name).toBe('AbortError');
  });

  it('passes other errors through as plain errors', () => {
    const r = reviveError(serializeError(new TypeError('boom')));
    expect(r).not.toBeInstanceOf(PixtralError);
    expect(r.name).toBe('TypeError');
    expect(r.message).toBe('boom');
  });
});
