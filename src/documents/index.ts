/**
 * Whole-document question answering (browser build): `askDocument` with PDFs rendered by pdf.js
 * in its own worker. The Node entry exports the same function over its own PDF renderer.
 */
import type { DocumentEngine } from './engine.js';
import { askDocumentWith } from './ask.js';
import { openPdfForDocument } from './pdf-browser.js';
import type { AskDocumentOptions, DocumentInput, PerPageResult, SynthesisResult } from './types.js';

export type * from './types.js';
export type { DocumentEngine, DocumentModel, DocumentChatEngine } from './engine.js';
export { openBrowserPdf, type BrowserPdf } from './pdf-browser.js';
export { longestEdgeForTokens, DEFAULT_PAGE_TOKENS } from './budget.js';

/**
 * Asks `question` about a whole document, one page at a time: per page (`perPage: true`) or one
 * synthesised answer with page citations (default). See `AskDocumentOptions`.
 */
export function askDocument(engine: DocumentEngine, document: DocumentInput, question: string, opts: AskDocumentOptions & { perPage: true }): Promise<PerPageResult>;
export function askDocument(engine: DocumentEngine, document: DocumentInput, question: string, opts?: AskDocumentOptions & { perPage?: false }): Promise<SynthesisResult>;
export function askDocument(engine: DocumentEngine, document: DocumentInput, question: string, opts?: AskDocumentOptions): Promise<SynthesisResult | PerPageResult>;
export function askDocument(engine: DocumentEngine, document: DocumentInput, question: string, opts: AskDocumentOptions = {}): Promise<SynthesisResult | PerPageResult> {
  return askDocumentWith(openPdfForDocument, engine, document, question, opts);
}
