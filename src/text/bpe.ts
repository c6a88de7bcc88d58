/**
 * Tiktoken's byte-pair encoding over Tekken's ranks, in O(n log n) per regex piece.
 *
 * The rule (tiktoken, js-tiktoken, mistral_common): split the text with the pattern; a piece
 * whose UTF-8 bytes are one token is that token; otherwise start from single bytes and, until no
 * adjacent pair is a token, merge the pair whose concatenation has the lowest rank (the leftmost
 * one on ties). js-tiktoken rescans every pair after each merge, O(n^2) in the piece's byte length
 * (a 20,000-letter run took 23 s). Here the parts are a linked list over the piece and the
 * candidate pairs sit in a binary heap keyed by (rank, start): the same pair wins each step, so
 * the ids are the same, and a merge only re-ranks its two neighbours.
 *
 * Bytes are held as "byte strings" (one char per byte, 0..255): Map lookups on them are cheap and
 * `atob` yields them directly from Tekken's base64.
 *
 * Heap entries go stale when a part they name grows; they are dropped when popped. An entry is
 * current iff its start is still a part and `pairRank[start]` still equals its rank: a pair at a
 * given start only ever gets longer, and distinct byte strings have distinct ranks, so a rank
 * seen again at the same start is the same pair.
 */

const utf8 = new TextEncoder();

/** The UTF-8 bytes of `s` as a byte string (lone surrogates become U+FFFD, as TextEncoder does). */
export function utf8ByteString(s: string): string {
  let i = 0;
  while (i < s.length && s.charCodeAt(i) < 0x80) i++;
  if (i === s.length) return s;
  const bytes = utf8.encode(s);
  let out = '';
  for (let k = 0; k < bytes.length; k++) out += String.fromCharCode(bytes[k]!);
  return out;
}

export class RankBpe {
  /** Byte string -> rank. */
  readonly #ranks: Map<string, number>;
  readonly #pattern: string;
  /** Added to every rank: the ids of the BPE tokens start after the special tokens. */
  readonly #offset: number;
  // Scratch space reused across pieces, grown on demand (a piece finishes synchronously).
  #next!: Int32Array;
  #prev!: Int32Array;
  #pairRank!: Int32Array;
  #heap!: Float64Array;

  /** `tokens[rank]` is the token's byte string. */
  constructor(tokens: readonly string[], pattern: string, offset: number) {
    this.#ranks = new Map();
    for (let r = 0; r < tokens.length; r++) this.#ranks.set(tokens[r]!, r);
    this.#pattern = pattern;
    this.#offset = offset;
    this.#allocate(64);
  }

  /**
   * Encodes `text`, appending ids to `out`; yields after every `chunkChars` characters of input
   * (at piece boundaries) so a caller can pause, abort or report progress. Drain it for a
   * synchronous encode.
   */
  *encodeChunks(text: string, out: number[], chunkChars: number): Generator<void, void, void> {
    const re = new RegExp(this.#pattern, 'gu');
    let since = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      const piece = m[0];
      if (piece.length === 0) {
        // The pattern cannot match empty, but a custom one might: step over one code point.
        re.lastIndex += (text.codePointAt(re.lastIndex) ?? 0) > 0xffff ? 2 : 1;
        continue;
      }
      this.#encodePiece(utf8ByteString(piece), out);
      since += piece.length;
      if (since >= chunkChars) {
        since = 0;
        yield;
      }
    }
  }

  #encodePiece(p: string, out: number[]): void {
    const whole = this.#ranks.get(p);
    if (whole !== undefined) {
      out.push(whole + this.#offset);
      return;
    }
    const n = p.length;
    this.#reserve(n);
    const next = this.#next;
    const prev = this.#prev;
    const pairRank = this.#pairRank;
    let size = 0;
    const heap = this.#heap;
    // key = rank * (n + 1) + start: orders by rank, then leftmost; exact below 2^53.
    const stride = n + 1;
    const push = (key: number): void => {
      let i = size++;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (heap[parent]! <= key) break;
        heap[i] = heap[parent]!;
        i = parent;
      }
      heap[i] = key;
    };
    const pop = (): number => {
      const top = heap[0]!;
      const last = heap[--size]!;
      let i = 0;
      for (;;) {
        let c = 2 * i + 1;
        if (c >= size) break;
        if (c + 1 < size && heap[c + 1]! < heap[c]!) c++;
        if (heap[c]! >= last) break;
        heap[i] = heap[c]!;
        i = c;
      }
      heap[i] = last;
      return top;
    };
    /** Re-ranks the pair starting at part `s` (its part and the next) and queues it. */
    const rankPair = (s: number): void => {
      const r = next[s]!;
      const rank = r < n ? this.#ranks.get(p.slice(s, next[r]!)) : undefined;
      pairRank[s] = rank ?? -1;
      if (rank !== undefined) push(rank * stride + s);
    };

    for (let i = 0; i < n; i++) {
      next[i] = i + 1;
      prev[i] = i - 1;
    }
    for (let i = 0; i < n; i++) rankPair(i);
    while (size > 0) {
      const key = pop();
      const s = key % stride;
      const rank = (key - s) / stride;
      // Stale: the part at s was merged into its left neighbour (pairRank -1) or has grown.
      if (pairRank[s] !== rank) continue;
      const r = next[s]!;
      const after = next[r]!;
      next[s] = after;
      if (after < n) prev[after] = s;
      pairRank[r] = -1;
      rankPair(s);
      if (prev[s]! >= 0) rankPair(prev[s]!);
    }
    for (let s = 0; s < n; s = next[s]!) out.push(this.#ranks.get(p.slice(s, next[s]!))! + this.#offset);
    // Scratch is ~36 bytes per byte of piece: do not keep a huge piece's around.
    if (n > 1 << 16) this.#allocate(64);
  }

  #reserve(n: number): void {
    if (this.#next.length <= n) this.#allocate(Math.max(n + 1, this.#next.length * 2));
  }

  #allocate(cap: number): void {
    this.#next = new Int32Array(cap);
    this.#prev = new Int32Array(cap);
    this.#pairRank = new Int32Array(cap);
    // At most n initial pairs plus two per merge (n - 1 merges).
    this.#heap = new Float64Array(3 * cap);
  }
}
