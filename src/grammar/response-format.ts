/**
 * `response_format` (OpenAI's shape) -> what xgrammar compiles. `text` needs no grammar;
 * `json_object` is any JSON object; `json_schema` is checked here against the subset of JSON
 * Schema the grammar engine enforces, so an unsupported keyword is a `FormatError` that names it
 * (and where it is) before any generation, never a constraint silently left out.
 */
import { FormatError } from '../errors.js';

export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | { type: 'json_schema'; json_schema: { name?: string; description?: string; schema?: Record<string, unknown>; strict?: boolean | null } };

/** What the grammar compiler gets: a JSON Schema, or `null` for "any JSON object". */
export interface GrammarSpec {
  /** Cache key: the same spec compiles once per model. */
  key: string;
  /** The schema as JSON text, or null for any JSON object. */
  schema: string | null;
}

/** Keywords that constrain the output and that xgrammar enforces. */
const ENFORCED = new Set([
  'type', 'properties', 'required', 'additionalProperties', 'items', 'prefixItems', 'minItems', 'maxItems',
  'enum', 'const', 'anyOf', 'oneOf', '$ref', '$defs', 'definitions', 'pattern', 'minLength', 'maxLength',
  'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum',
]);
/** Keywords that only annotate: accepted and ignored. */
const ANNOTATIONS = new Set(['title', 'description', 'default', 'examples', '$schema', '$id', '$comment', 'deprecated', 'readOnly', 'writeOnly']);
const TYPES = new Set(['object', 'array', 'string', 'number', 'integer', 'boolean', 'null']);

function checkSchema(s: unknown, path: string): void {
  if (typeof s === 'boolean') return;
  if (typeof s !== 'object' || s === null || Array.isArray(s)) throw new FormatError(`response_format schema at ${path}: a schema must be an object (got ${JSON.stringify(s)})`);
  for (const [k, v] of Object.entries(s)) {
    if (ANNOTATIONS.has(k)) continue;
    if (!ENFORCED.has(k)) throw new FormatError(`response_format schema at ${path}: "${k}" is not supported (supported: ${[...ENFORCED].join(', ')})`);
    const at = `${path}/${k}`;
    if (k === 'type') {
      for (const t of Array.isArray(v) ? v : [v]) if (!TYPES.has(t as string)) throw new FormatError(`response_format schema at ${at}: unknown type ${JSON.stringify(t)}`);
    } else if (k === 'properties' || k === '$defs' || k === 'definitions') {
      if (typeof v !== 'object' || v === null) throw new FormatError(`response_format schema at ${at}: must be an object`);
      for (const [name, sub] of Object.entries(v)) checkSchema(sub, `${at}/${name}`);
    } else if (k === 'items' || k === 'additionalProperties') {
      checkSchema(v, at);
    } else if (k === 'prefixItems' || k === 'anyOf' || k === 'oneOf') {
      if (!Array.isArray(v) || v.length === 0) throw new FormatError(`response_format schema at ${at}: must be a non-empty array`);
      v.forEach((sub, i) => checkSchema(sub, `${at}/${i}`));
    } else if (k === 'enum') {
      if (!Array.isArray(v) || v.length === 0) throw new FormatError(`response_format schema at ${at}: must be a non-empty array`);
    } else if (k === 'required') {
      if (!Array.isArray(v) || v.some((r) => typeof r !== 'string')) throw new FormatError(`response_format schema at ${at}: must be an array of property names`);
    }
  }
}

/** Validates a `response_format` and returns what to compile, or null for plain text. */
export function grammarSpec(format: ResponseFormat | undefined | null): GrammarSpec | null {
  if (format === undefined || format === null) return null;
  if (typeof format !== 'object') throw new FormatError(`response_format must be an object (got ${JSON.stringify(format)})`);
  switch (format.type) {
    case 'text':
      return null;
    case 'json_object':
      return { key: 'json_object', schema: null };
    case 'json_schema': {
      const schema = format.json_schema?.schema;
      if (schema === undefined) return { key: 'json_object', schema: null };
      checkSchema(schema, '#');
      const text = JSON.stringify(schema);
      return { key: `schema:${text}`, schema: text };
    }
    default:
      throw new FormatError(`response_format.type ${JSON.stringify((format as { type: unknown }).type)} is not supported (text, json_object, json_schema)`);
  }
}

/**
 * The public schema check (exported from the package root): throws `FormatError` naming the
 * unsupported keyword and where it is (`#/properties/total: "multipleOf" is not supported`),
 * exactly as a generation with this `response_format` would, but before any model is loaded.
 */
export function checkResponseFormat(format: ResponseFormat | undefined | null): void {
  grammarSpec(format);
}
