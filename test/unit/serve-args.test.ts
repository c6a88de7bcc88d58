/** `pixtral-webgpu serve` argument parsing: defaults, every flag, the API-key variable, usage errors. */
import { describe, expect, it } from 'vitest';
import { API_KEY_ENV, parseServeArgs } from '../../cli/serve.js';

describe('parseServeArgs', () => {
  it('has safe defaults: localhost, 8080, no key, no CORS, no remote images', () => {
    expect(parseServeArgs(['m'], {})).toEqual({
      model: 'm', host: '127.0.0.1', port: 8080, apiKey: undefined, cors: undefined, allowRemoteImages: false, modelId: undefined,
      maxContext: undefined, maxBodyBytes: 32 * 2 ** 20, maxQueue: 16, graceMs: 30_000, adapter: undefined,
    });
    expect(parseServeArgs(['--help'], {})).toBeNull();
  });

  it('reads every flag, and the API key from the environment unless given', () => {
    const a = parseServeArgs(
      ['m', '--host', '0.0.0.0', '--port', '0', '--api-key', 'k', '--cors', '*', '--allow-remote-images', '--model-id', 'pix', '--max-context', '4096', '--max-body-mb', '0.5', '--queue', '0', '--grace-seconds', '2.5', '--adapter', 'software'],
      { [API_KEY_ENV]: 'from-env' },
    )!;
    expect(a).toMatchObject({ host: '0.0.0.0', port: 0, apiKey: 'k', cors: '*', allowRemoteImages: true, modelId: 'pix', maxContext: 4096, maxBodyBytes: 2 ** 19, maxQueue: 0, graceMs: 2500, adapter: 'software' });
    expect(parseServeArgs(['m'], { [API_KEY_ENV]: 'from-env' })!.apiKey).toBe('from-env');
    expect(parseServeArgs(['m', '--vision-weights', 'host'], {})!.visionWeights).toBe('host');
    expect(parseServeArgs(['m', '--vision-weights', 'gpu'], {})!.visionWeights).toBe('gpu');
  });

  it('refuses bad usage with a message naming the flag', () => {
    expect(() => parseServeArgs([], {})).toThrow(/exactly one <model>/);
    expect(() => parseServeArgs(['m', '--port', '70000'], {})).toThrow(/--port/);
    expect(() => parseServeArgs(['m', '--port', 'x'], {})).toThrow(/--port/);
    expect(() => parseServeArgs(['m', '--queue', '-1'], {})).toThrow(/--queue/);
    expect(() => parseServeArgs(['m', '--max-body-mb', '0'], {})).toThrow(/--max-body-mb/);
    expect(() => parseServeArgs(['m', '--bogus'], {})).toThrow(/bogus/);
    expect(() => parseServeArgs(['m', '--vision-weights', 'cpu'], {})).toThrow(/--vision-weights must be host or gpu \(got "cpu"\)/);
  });
});
