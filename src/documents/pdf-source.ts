/**
 * The PDF side of `askDocument`, independent of where it runs: a `PdfOpener` opens the bytes and
 * renders one page at a time (browser: `pdf-browser.ts`, pdf.js in its own worker; Node: the node
 * entry's renderer). Pages are rendered at the model's longest edge, so one rendering serves any
 * `pageTokens`.
 */
import type { RgbaImage } from '../image/decode.js';

export interface OpenedPdf {
  pageCount: number;
  /** Page `page` (1-based) drawn over white with its longest side `longestEdge` pixels (about). */
  render(page: number, longestEdge: number): Promise<RgbaImage>;
  close(): Promise<void>;
}

export type PdfOpener = (bytes: Uint8Array, name: string) => Promise<OpenedPdf>;
