/**
 * `askDocument`'s public types: the document it takes, its options, the per-page progress it
 * reports and the two result shapes (synthesis and per page).
 */
import type { ImageInput } from '../image/decode.js';
import type { ResponseFormat } from '../grammar/response-format.js';
import type { FinishReason } from '../engine/types.js';

/** A PDF (bytes or a file), or the pages as images (page 1 first). */
export type DocumentInput = Blob | ArrayBuffer | Uint8Array | readonly ImageInput[];

export interface AskDocumentOptions {
  /** Image tokens per page at most: the longest edge is the largest that fits (default 1024). */
  pageTokens?: number;
  /** 1-based page selection, e.g. `'1-20'`, `'1-3,7'`, `'5-'` (default every page). */
  pages?: string;
  /** Ask every page alone and return one answer per page, no synthesis. */
  perPage?: boolean;
  /** Per page only: OpenAI `response_format`; each page's answer is then validated JSON (`json`). */
  response_format?: ResponseFormat;
  /** Tokens per answer (per page, and the final answer) at most (default 256). */
  maxTokens?: number;
  /** Called after each page with what was found there. */
  onPage?: (p: PageProgress) => void;
  /** Stops between pages and within a page (one decode step). */
  signal?: AbortSignal;
  /** Names the document in errors (default 'document'). */
  name?: string;
}

/** Progress after page `index` of `total` (both 1-based counts of the selection). */
export interface PageProgress {
  page: number;
  index: number;
  total: number;
  /** Synthesis: whether the page holds what the question needs. */
  relevant?: boolean;
  /** Synthesis: the quote or extract; per page: the answer. */
  found?: string;
  /** The page could not be rendered or asked. */
  error?: string;
  /** Since `askDocument` was called. */
  elapsedMs: number;
}

/** One model call's cost. */
export interface CallStats {
  promptTokens: number;
  imageTokens: number;
  generatedTokens: number;
  /** Tokens held in the KV cache at the call's end: prompt + generated. */
  kvTokens: number;
  /** Images decoded and resized by the engine for this call (0: its image cache had them). */
  imagesPreprocessed: number;
  finishReason: FinishReason | 'unknown';
  ms: number;
}

export interface DocumentStats {
  /** Pages selected. */
  pages: number;
  /** Pages that failed (render or model call), each reported with its `error`. */
  failedPages: number;
  /** Model calls: one per page, plus the reduce step in synthesis. */
  calls: number;
  promptTokens: number;
  imageTokens: number;
  generatedTokens: number;
  /** The largest prompt + generated tokens of any single call: what the KV cache held at most. */
  peakKvTokens: number;
  /** Pages whose rendered image came from an earlier question about the same document. */
  reusedPages: number;
  /** Pages rendered (or decoded) for this question. */
  renderedPages: number;
  /** Images the engine decoded and resized (pages it already held preprocessed are not counted). */
  imagesPreprocessed: number;
  /** Longest image edge (pixels) each page was asked at, chosen from `pageTokens`. */
  longestEdge: number;
  renderMs: number;
  totalMs: number;
}

export interface PageAnswer {
  page: number;
  answer: string;
  /** With `response_format`: the parsed answer. */
  json?: unknown;
  error?: string;
  stats?: CallStats;
}

export interface PerPageResult {
  pages: PageAnswer[];
  stats: DocumentStats;
}

export interface PageNotes {
  page: number;
  relevant: boolean;
  quote: string;
  notes: string;
  error?: string;
  stats?: CallStats;
}

export interface Citation {
  page: number;
  quote: string;
}

export interface SynthesisResult {
  answer: string;
  citations: Citation[];
  pages: PageNotes[];
  /** Pages whose image was shown again to the reduce step. */
  reducePages: number[];
  stats: DocumentStats & { reduce: CallStats };
}
