/**
 * The "Extract as JSON" presets: a JSON Schema and the question that goes with it. The colour
 * preset is the one the embedded demo model can actually answer (it knows "What color is the
 * box?"); the others are for a real model (Pixtral-12B, mistral3) or a remote server.
 */

export interface SchemaPreset {
  /** Also the `json_schema.name` sent and the downloaded file's name. */
  name: string;
  label: string;
  question: string;
  schema: Record<string, unknown>;
}

const str = { type: 'string' };
const num = { type: 'number' };

export const SCHEMA_PRESETS: readonly SchemaPreset[] = [
  {
    name: 'box_color',
    label: 'Box colour (the embedded demo model)',
    question: 'What color is the box?',
    schema: { type: 'object', properties: { color: { enum: ['red', 'green', 'blue', 'yellow', 'purple', 'orange'] } }, required: ['color'] },
  },
  {
    name: 'key_values',
    label: 'Key-value pairs (a form, a settings screen)',
    question: 'List every label and its value shown in the image.',
    schema: {
      type: 'object',
      properties: { pairs: { type: 'array', items: { type: 'object', properties: { key: str, value: str }, required: ['key', 'value'] } } },
      required: ['pairs'],
    },
  },
  {
    name: 'table_rows',
    label: "A table's rows",
    question: 'Transcribe the table: its column headers, then each row.',
    schema: {
      type: 'object',
      properties: { columns: { type: 'array', items: str }, rows: { type: 'array', items: { type: 'array', items: str } } },
      required: ['columns', 'rows'],
    },
  },
  {
    name: 'invoice',
    label: 'An invoice',
    question: 'Extract the invoice number, date, seller, currency, line items and total.',
    schema: {
      type: 'object',
      properties: {
        invoice_number: str,
        date: { type: 'string', description: 'as printed on the invoice' },
        seller: str,
        currency: str,
        line_items: { type: 'array', items: { type: 'object', properties: { description: str, quantity: num, amount: num }, required: ['description', 'amount'] } },
        total: num,
      },
      required: ['invoice_number', 'date', 'total'],
    },
  },
];
