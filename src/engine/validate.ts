/**
 * Request validation, before any image, tokenizer or GPU work: the shape of chat messages, the
 * generation options, `generate`'s ids and pixels, and the load options. Each failure is a typed
 * error that names the culprit (`messages[2].content[1]`, `stop[0]`, `inputIds[17]`), so a bad
 * request never turns into a `TypeError` deep inside the engine or a hang in the worker.
 * Pure functions: the client runs them on the main thread too, before anything is transferred.
 */
import { FormatError, LimitError } from '../errors.js';
import type { SpecialTokens } from '../config.js';
import type { ChatMessage, GenerateRequest, GenerationOptions, LoadRequest } from './types.js';

const ROLES = ['system', 'user', 'assistant'] as const;

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'an array';
  if (typeof x === 'string') return `string ${JSON.stringify(x.slice(0, 40))}`;
  if (typeof x !== 'object') return `${typeof x} ${String(x)}`.trim();
  return (x as object).constructor?.name ?? 'object';
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/**
 * Checks a chat request's messages: an array of `{ role, content }`, content a string or an
 * array of text/image parts, images only in user messages (Mistral's chat formats have no image
 * slot in system or assistant messages: rendering one would shift every later image).
 */
export function validateMessages(messages: unknown): asserts messages is ChatMessage[] {
  if (!Array.isArray(messages)) throw new FormatError(`messages must be an array of { role, content } objects (got ${describe(messages)})`);
  if (messages.length === 0) throw new FormatError('messages is empty: a chat needs at least one user message');
  messages.forEach((m: unknown, i) => {
    const at = `messages[${i}]`;
    if (!isObject(m)) throw new FormatError(`${at} must be a { role, content } object (got ${describe(m)})`);
    if (!ROLES.includes(m.role as (typeof ROLES)[number])) {
      throw new FormatError(`${at}.role must be one of ${ROLES.join(', ')} (got ${describe(m.role)})`);
    }
    const content = m.content;
    if (typeof content === 'string') return;
    if (!Array.isArray(content)) {
      throw new FormatError(`${at}.content must be a string or an array of text/image parts (got ${content === undefined ? 'no content' : describe(content)})`);
    }
    content.forEach((p: unknown, j) => {
      const pat = `${at}.content[${j}]`;
      if (!isObject(p)) throw new FormatError(`${pat} must be a { type, ... } part (got ${describe(p)})`);
      if (p.type === 'text') {
        if (typeof p.text !== 'string') throw new FormatError(`${pat} is a text part whose text is ${describe(p.text)}, not a string`);
      } else if (p.type === 'image') {
        if (m.role !== 'user') {
          throw new FormatError(
            `${pat} is an image in ${m.role === 'assistant' ? 'an' : 'a'} ${m.role as string} message: Mistral's chat formats have no images in system or assistant messages (put it in a user message)`,
          );
        }
        if (p.image === undefined || p.image === null) throw new FormatError(`${pat} is an image part without an image`);
      } else {
        throw new FormatError(`${pat} has an unknown part type ${describe(p.type)} (expected "text" or "image")`);
      }
    });
  });
}

/** `stop` as OpenAI takes it: one string or a list of strings, none empty. */
export function normalizeStop(stop: unknown): string[] {
  if (stop === undefined || stop === null) return [];
  const list = typeof stop === 'string' ? [stop] : stop;
  if (!Array.isArray(list)) throw new FormatError(`stop must be a string or an array of strings (got ${describe(stop)})`);
  list.forEach((s: unknown, i) => {
    if (typeof s !== 'string') throw new FormatError(`stop[${i}] must be a string (got ${describe(s)})`);
    if (!s) throw new FormatError(`stop[${i}] is an empty string: it would match before any text`);
  });
  return list as string[];
}

/** Generation options with `stop` normalised to a list; numbers checked. */
export function validateGenerationOptions<T extends GenerationOptions>(o: T | undefined): T & { stop: string[] } {
  if (o !== undefined && !isObject(o)) throw new FormatError(`options must be an object (got ${describe(o)})`);
  const opts = (o ?? {}) as T;
  const mt = opts.maxTokens;
  if (mt !== undefined && !(Number.isInteger(mt) && mt >= 0)) throw new LimitError(`maxTokens must be a non-negative integer (got ${mt})`);
  return { ...opts, stop: normalizeStop(opts.stop) };
}

/** `generate`'s ids: an array or an integer typed array, as a plain array. */
export function normalizeInputIds(ids: unknown): number[] {
  const typed =
    ids instanceof Uint32Array || ids instanceof Int32Array || ids instanceof Uint16Array || ids instanceof Int16Array || ids instanceof Uint8Array;
  if (!Array.isArray(ids) && !typed) {
    throw new FormatError(`inputIds must be an array of token ids or an integer typed array (got ${describe(ids)})`);
  }
  const out = Array.from(ids as ArrayLike<number>);
  if (!out.length) throw new FormatError('inputIds is empty');
  out.forEach((id, i) => {
    if (!Number.isInteger(id) || id < 0) throw new FormatError(`inputIds[${i}] is ${describe(id)}, not a token id`);
  });
  return out;
}

/**
 * `generate`'s images: CHW float pixels of the stated size, every value finite (a NaN would
 * spread through attention to every logit). And no image token in `ids` that no image covers.
 */
export function validateGenerateImages(req: GenerateRequest, ids: number[], t: SpecialTokens): void {
  const images: unknown = req.images ?? [];
  if (!Array.isArray(images)) throw new FormatError(`images must be an array (got ${describe(images)})`);
  images.forEach((im: unknown, i) => {
    const at = `images[${i}]`;
    if (!isObject(im)) throw new FormatError(`${at} must be { pixels, height, width } (got ${describe(im)})`);
    const { pixels, height, width } = im;
    if (!(pixels instanceof Float32Array)) throw new FormatError(`${at}.pixels must be a Float32Array (got ${describe(pixels)})`);
    if (!Number.isInteger(height) || !Number.isInteger(width) || (height as number) < 1 || (width as number) < 1) {
      throw new FormatError(`${at}: height and width must be positive integers (got ${String(height)}x${String(width)})`);
    }
    const want = 3 * (height as number) * (width as number);
    if (pixels.length !== want) throw new FormatError(`${at}.pixels holds ${pixels.length} values; 3 x ${String(height)} x ${String(width)} = ${want} expected`);
    for (let k = 0; k < pixels.length; k++) {
      if (!Number.isFinite(pixels[k]!)) throw new FormatError(`${at}.pixels[${k}] is ${pixels[k]}: pixels must be finite`);
    }
  });
  if (!images.length) {
    const k = ids.findIndex((id) => id === t.img || id === t.imgBreak || id === t.imgEnd);
    if (k >= 0) throw new FormatError(`inputIds[${k}] is an image token (${ids[k]}) but no images were given: pass one image per [IMG] run`);
  }
}

/** Load options, before anything is fetched or allocated. */
export function validateLoadOptions(o: unknown): asserts o is LoadRequest {
  if (!isObject(o)) throw new FormatError(`load options must be an object with a url (got ${describe(o)})`);
  const isBlob = (x: unknown) => typeof Blob !== 'undefined' && x instanceof Blob;
  if (!isBlob(o.url) && (typeof o.url !== 'string' || !o.url)) {
    throw new FormatError(`the model url is missing: pass { url } pointing at a folder made by \`pixtral-webgpu convert\`, or a text GGUF (URL or File) with its mmproj (got ${describe(o.url)})`);
  }
  if (o.mmproj !== undefined && !isBlob(o.mmproj) && (typeof o.mmproj !== 'string' || !o.mmproj)) {
    throw new FormatError(`mmproj must be the mmproj GGUF's URL or a File/Blob (got ${describe(o.mmproj)})`);
  }
  if (isBlob(o.url) && o.mmproj === undefined) {
    throw new FormatError(`url is a ${describe(o.url)}: a File or Blob must be a llama.cpp text GGUF, loaded with its mmproj (pass { url: textFile, mmproj: mmprojFile })`);
  }
  const intAtLeast = (key: string, min: number) => {
    const v = o[key];
    if (v !== undefined && !(Number.isInteger(v) && (v as number) >= min)) throw new LimitError(`${key} must be an integer >= ${min} (got ${describe(v)})`);
  };
  intAtLeast('maxContext', 2);
  intAtLeast('maxPatches', 1);
  if (o.visionWeights !== undefined && o.visionWeights !== 'gpu' && o.visionWeights !== 'host') {
    throw new FormatError(`visionWeights must be "gpu" or "host" (got ${describe(o.visionWeights)})`);
  }
  if (o.kvCache !== undefined && o.kvCache !== 'f16' && o.kvCache !== 'f32') {
    throw new FormatError(`kvCache must be "f16" or "f32" (got ${describe(o.kvCache)})`);
  }
}
