/**
 * Grammar-constrained decoding for one model: a `GrammarSpec` is compiled once against the
 * model's vocabulary (cached by spec), and each request gets a `TokenConstraint` that gives the
 * bitmask of allowed next tokens (bit `id` of word `id >> 5`, 1 = allowed) and follows the
 * tokens actually sampled. The vocabulary table is built on first use (131k strings for Tekken),
 * so models that never see a `response_format` pay nothing.
 */
import { FormatError, LimitError } from '../errors.js';
import type { Tokenizer } from '../text/tokenizer.js';
import { loadXGrammar } from './xgrammar.js';
import { byteLevelVocab } from './vocab.js';
import type { GrammarSpec } from './response-format.js';

import type { CompiledGrammar, GrammarCompiler, GrammarMatcher } from '@mlc-ai/web-xgrammar';

/**
 * Compact JSON without whitespace: `{"a":1,"b":[2,3]}`, as `JSON.stringify` writes it. Measured on
 * the embedded model's 12 colour samples (README, "Structured output"): `{"color":"` puts the
 * right colour 6/12 times, `{"color": "` (a space after ':' and ',') 3/12 (q4), and letting the
 * model place whitespace (xgrammar's any_whitespace) sends it into runs of spaces. It is also
 * the fewest tokens per answer.
 */
const SEPARATORS: [string, string] = [',', ':'];
/**
 * json_object's layout: `{"a": [1, {"b": null}], "c": "x"}`. Any value there comes from
 * xgrammar's built-in JSON rules, which put a space after ',' and ':' whatever the separators, so
 * the object's own separators match them.
 */
const ANY_OBJECT_SEPARATORS: [string, string] = [', ', ': '];
const COMPACT = -1; // xgrammar's "no indent"

export class Grammars {
  #compiler: Promise<GrammarCompiler> | undefined;
  readonly #compiled = new Map<string, Promise<CompiledGrammar>>();

  /** `eos`: the token that ends generation; allowed once the output is complete. */
  constructor(
    private readonly tokenizer: Pick<Tokenizer, 'vocabSize' | 'isSpecial' | 'idToBytes'>,
    private readonly eos: number,
  ) {}

  /** Bitmask words per step: ceil(vocabSize / 32). */
  get maskWords(): number {
    return Math.ceil(this.tokenizer.vocabSize / 32);
  }

  private compiler(): Promise<GrammarCompiler> {
    this.#compiler ??= (async () => {
      const xg = await loadXGrammar();
      const info = await xg.TokenizerInfo.createTokenizerInfo(byteLevelVocab(this.tokenizer), 'byte_level', false, this.tokenizer.vocabSize, [this.eos]);
      return xg.GrammarCompiler.createGrammarCompiler(info, true);
    })();
    return this.#compiler;
  }

  /** Compiles a spec (once per spec; later calls share the result). */
  compile(spec: GrammarSpec): Promise<CompiledGrammar> {
    let c = this.#compiled.get(spec.key);
    if (!c) {
      c = (async () => {
        const compiler = await this.compiler();
        try {
          // json_object: any object (extra properties allowed); a schema: strict, as OpenAI's strict mode.
          return spec.schema === null
            ? await compiler.compileJSONSchema('{"type":"object"}', false, COMPACT, ANY_OBJECT_SEPARATORS, false)
            : await compiler.compileJSONSchema(spec.schema, false, COMPACT, SEPARATORS, true);
        } catch (e) {
          throw new FormatError(`response_format: the grammar engine cannot compile this schema: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
        }
      })();
      c.catch(() => this.#compiled.delete(spec.key));
      this.#compiled.set(spec.key, c);
    }
    return c;
  }

  /** A fresh constraint for one generation. */
  async start(spec: GrammarSpec): Promise<TokenConstraint> {
    const xg = await loadXGrammar();
    return new TokenConstraint(await xg.GrammarMatcher.createGrammarMatcher(await this.compile(spec)));
  }
}

/** The allowed-token state of one generation. */
export class TokenConstraint {
  constructor(private readonly matcher: GrammarMatcher) {}

  /** Allowed next tokens as a bitmask: bit `id & 31` of word `id >> 5`. */
  async mask(): Promise<Uint32Array> {
    const m = await this.matcher.getNextTokenBitmask();
    return new Uint32Array(m.buffer, m.byteOffset, m.length);
  }

  /** Follows a sampled token. A token outside the mask means the mask was not applied: a bug. */
  accept(token: number): void {
    if (!this.matcher.acceptToken(token)) throw new LimitError(`token ${token} violates the response_format grammar`);
  }

  /** The output is complete (the stop token was accepted). */
  get done(): boolean {
    return this.matcher.isTerminated();
  }

  dispose(): void {
    this.matcher.dispose();
  }
}
