/** `pixtral-webgpu ask --vision-weights host|gpu`: parsed into the `visionWeights` load option; anything else is a usage error naming the flag. */
import { describe, expect, it } from 'vitest';
import { parseAskArgs } from '../../cli/ask.js';
import { UsageError } from '../../cli/usage.js';

describe('ask --vision-weights', () => {
  it('passes host or gpu through and leaves the default alone', () => {
    expect(parseAskArgs(['m', '--vision-weights', 'host', 'q'])!.visionWeights).toBe('host');
    expect(parseAskArgs(['m', '--vision-weights', 'gpu', 'q'])!.visionWeights).toBe('gpu');
    expect(parseAskArgs(['m', 'q'])!.visionWeights).toBeUndefined();
  });

  it('refuses another value, naming the flag', () => {
    expect(() => parseAskArgs(['m', '--vision-weights', 'x', 'q'])).toThrow(UsageError);
    expect(() => parseAskArgs(['m', '--vision-weights', 'x', 'q'])).toThrow(/--vision-weights must be host or gpu \(got "x"\)/);
  });
});
