/**
 * The pure parts of `askDocument`: the page budget (pageTokens -> longest edge, by the model's
 * own resize rule) and page selections checked against the page count.
 */
import { describe, expect, it } from 'vitest';
import { longestEdgeForTokens } from '../../src/documents/budget.js';
import { selectPages } from '../../src/documents/pages.js';
import { sizeForImage } from '../../src/image/size.js';
import { LimitError } from '../../src/errors.js';

describe('longestEdgeForTokens', () => {
  it('picks the largest edge whose token grid fits, for Pixtral-12B and mistral3 geometry', () => {
    for (const [h, w, budget, size, px] of [
      [1650, 1275, 1500, 1024, 16], // a Letter page at 150 dpi, Pixtral-12B
      [1650, 1275, 1024, 1540, 28], // the same page, mistral3
      [800, 2400, 300, 1024, 16], // a wide slide
      [128, 176, 72, 128, 16], // the embedded model's page: the budget is its full size
    ] as const) {
      const r = longestEdgeForTokens(h, w, budget, size, px);
      expect(r.tokens).toBe(sizeForImage(h, w, { longestEdge: r.longestEdge, tokenPx: px }).tokens);
      expect(r.tokens).toBeLessThanOrEqual(budget);
      expect(r.longestEdge).toBeLessThanOrEqual(size);
      // One pixel more no longer fits (or the model's limit was reached).
      if (r.longestEdge < size) expect(sizeForImage(h, w, { longestEdge: r.longestEdge + 1, tokenPx: px }).tokens).toBeGreaterThan(budget);
    }
    expect(longestEdgeForTokens(1650, 1275, 1500, 1024, 16)).toEqual({ longestEdge: 683, tokens: 1462 });
  });

  it('refuses a budget below one token per page', () => {
    expect(() => longestEdgeForTokens(100, 100, 1, 1024, 16)).toThrow(LimitError);
    expect(() => longestEdgeForTokens(100, 100, 2.5, 1024, 16)).toThrow(/pageTokens must be an integer/);
  });
});

describe('selectPages', () => {
  it('reads lists and ranges, open ranges to the end, no duplicates', () => {
    expect(selectPages(undefined, 3, 'doc')).toEqual([1, 2, 3]);
    expect(selectPages('1-3,7', 10, 'doc')).toEqual([1, 2, 3, 7]);
    expect(selectPages('8-', 10, 'doc')).toEqual([8, 9, 10]);
    expect(selectPages('2,2,1-2', 10, 'doc')).toEqual([2, 1]);
  });

  it('names the culprit', () => {
    expect(() => selectPages('1-20', 12, 'report.pdf')).toThrow('pages "1-20": report.pdf has 12 pages');
    expect(() => selectPages('a', 12, 'doc')).toThrow(/"a" is not a page number/);
    expect(() => selectPages('5-3', 12, 'doc')).toThrow(/not an increasing range/);
    expect(() => selectPages('0', 12, 'doc')).toThrow(LimitError);
  });
});
