/**
 * Whole-document question answering in Node: `askDocument` with PDFs rendered by the node
 * entry's renderer (pdf.js legacy build on `@napi-rs/canvas`), one page per call.
 */
import { DEFAULT_DPI, pdfPageCount, renderPdfPages } from '../node/pdf.js';
import type { DocumentEngine } from './engine.js';
import { askDocumentWith } from './ask.js';
import type { OpenedPdf } from './pdf-source.js';
import type { AskDocumentOptions, DocumentInput, PerPageResult, SynthesisResult } from './types.js';

export type * from './types.js';
export type { DocumentEngine, DocumentModel, DocumentChatEngine } from './engine.js';
export { longestEdgeForTokens, DEFAULT_PAGE_TOKENS } from './budget.js';

/** The node renderer takes a DPI, not a size: pages are drawn at `DEFAULT_DPI` and the engine downsizes. */
async function openPdfInNode(bytes: Uint8Array, name: string): Promise<OpenedPdf> {
  const pageCount = await pdfPageCount(bytes, name);
  return {
    pageCount,
    async render(page) {
      const [p] = await renderPdfPages(bytes, { pages: [page], dpi: DEFAULT_DPI, name });
      return p!.image;
    },
    close: async () => undefined,
  };
}

/** `askDocument` in Node: the same function as the browser build's. */
export function askDocument(engine: DocumentEngine, document: DocumentInput, question: string, opts: AskDocumentOptions & { perPage: true }): Promise<PerPageResult>;
export function askDocument(engine: DocumentEngine, document: DocumentInput, question: string, opts?: AskDocumentOptions & { perPage?: false }): Promise<SynthesisResult>;
export function askDocument(engine: DocumentEngine, document: DocumentInput, question: string, opts?: AskDocumentOptions): Promise<SynthesisResult | PerPageResult>;
export function askDocument(engine: DocumentEngine, document: DocumentInput, question: string, opts: AskDocumentOptions = {}): Promise<SynthesisResult | PerPageResult> {
  return askDocumentWith(openPdfInNode, engine, document, question, opts);
}
