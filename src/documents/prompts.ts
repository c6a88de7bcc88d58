/**
 * The texts and the schema of the two synthesis steps. Map: one page and the question; the model
 * says whether the page holds what the question needs and quotes it, as JSON bounded in length
 * (so one page's pass stays short). Reduce: the collected notes (text), the question, and a
 * request to cite pages as "(page N)".
 */
import type { ResponseFormat } from '../grammar/response-format.js';
import type { PageNotes } from './types.js';

export const QUOTE_CHARS = 100;
export const NOTES_CHARS = 100;
/** Room for the JSON keys and punctuation around the two strings. */
export const MAP_MAX_TOKENS = QUOTE_CHARS + NOTES_CHARS + 40;

export const MAP_FORMAT: ResponseFormat = {
  type: 'json_schema',
  json_schema: {
    name: 'page_notes',
    strict: true,
    schema: {
      type: 'object',
      properties: {
        relevant: { type: 'boolean' },
        quote: { type: 'string', maxLength: QUOTE_CHARS },
        notes: { type: 'string', maxLength: NOTES_CHARS },
      },
      required: ['relevant', 'quote', 'notes'],
      additionalProperties: false,
    },
  },
};

export function mapPrompt(question: string): string {
  return (
    `Question: ${question}\n` +
    'Does this page hold what the question needs? Reply in JSON: "relevant" (true or false), ' +
    `"quote" (the exact words or numbers on this page that answer it, empty if none, at most ${QUOTE_CHARS} characters), ` +
    `"notes" (what this page adds to the answer, at most ${NOTES_CHARS} characters).`
  );
}

export function noteLine(p: PageNotes): string {
  return `Page ${p.page}: ${p.quote ? `"${p.quote}"` : '(no quote)'}${p.notes ? ` ${p.notes}` : ''}`;
}

export function reducePrompt(question: string, lines: string[], pagesShown: number[]): string {
  const head = lines.length
    ? 'Notes taken page by page from a document, for the question below:\n' + lines.join('\n')
    : 'No page of the document was found to hold what the question needs.';
  const shown = pagesShown.length ? `\nThe image${pagesShown.length > 1 ? 's' : ''} above ${pagesShown.length > 1 ? 'are pages' : 'is page'} ${pagesShown.join(', ')}.` : '';
  return `${head}${shown}\n\nQuestion: ${question}\nAnswer from these notes, and cite each page you use as (page N).`;
}
