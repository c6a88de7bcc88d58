/**
 * The image-token budget of one page -> the longest image edge to ask it at: the largest edge
 * (at most the model's `image_size`) whose token grid, by the model's own target-size rule
 * (`sizeForImage`), costs at most `pageTokens` prompt tokens.
 */
import { LimitError } from '../errors.js';
import { sizeForImage } from '../image/size.js';

export const DEFAULT_PAGE_TOKENS = 1024;

export function longestEdgeForTokens(height: number, width: number, pageTokens: number, imageSize: number, tokenPx: number): { longestEdge: number; tokens: number } {
  if (!Number.isInteger(pageTokens) || pageTokens < 2) throw new LimitError(`pageTokens must be an integer >= 2 (one image token and its end token; got ${pageTokens})`);
  // Tokens grow with the edge but not strictly (rounding): scan down from the model's limit.
  for (let edge = imageSize; edge >= tokenPx; edge--) {
    const s = sizeForImage(height, width, { longestEdge: edge, tokenPx });
    if (s.tokens <= pageTokens) return { longestEdge: edge, tokens: s.tokens };
  }
  throw new LimitError(`pageTokens ${pageTokens} is too small for a ${width}x${height} page: even a ${tokenPx}-pixel edge costs more`);
}
