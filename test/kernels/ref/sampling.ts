/**
 * CPU reference of GPU token selection (src/kernels/sampling.ts), float64, same rules as the
 * shaders: Hugging Face repetition penalty (each distinct id once), ranking by value with NaN
 * lowest, -0 == +0 and lowest index first on ties; weights exp((l - l_max) / T) (1 for ties with the
 * max, 0 for -inf / NaN or below a +inf max); top-p keeps the shortest prefix whose mass before the
 * last kept entry is < topP; the draw takes the first kept r with cumsum(w)_r > u * sum(kept w).
 * It also reports the boundaries (cumulative kept mass, prefix masses for top-p) so a test can
 * stay away from them: there f32 and f64 may legitimately disagree.
 */

export interface RefOptions {
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
  u: number;
}

export function penalize(logits: ArrayLike<number>, ids: ArrayLike<number>, penalty: number): Float64Array {
  const out = Float64Array.from(logits as ArrayLike<number>);
  if (penalty === 1) return out;
  const seen = new Set<number>();
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (id >= out.length || seen.has(id)) continue;
    seen.add(id);
    const v = out[id]!;
    out[id] = v > 0 ? v / penalty : v * penalty;
  }
  return out;
}

/** a ranks before b (value desc, NaN last, -0 == +0, index asc). */
function before(v: ArrayLike<number>, a: number, b: number): boolean {
  const x = v[a]!;
  const y = v[b]!;
  const xn = Number.isNaN(x);
  const yn = Number.isNaN(y);
  if (xn !== yn) return yn;
  if (!xn && x !== y) return x > y;
  return a < b;
}

/** Indices of the k best in rank order. */
export function topkOrder(v: ArrayLike<number>, k: number): number[] {
  const idx = Array.from({ length: v.length }, (_, i) => i);
  idx.sort((a, b) => (before(v, a, b) ? -1 : 1));
  return idx.slice(0, k);
}

export function argmaxRef(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (before(v, i, best)) best = i;
  return best;
}

export interface RefDistribution {
  /** Candidate ids in rank order (top-k). */
  order: number[];
  /** Unnormalised weights of `order`. */
  w: number[];
  /** Candidates kept by top-p. */
  kept: number;
  /** Normalised cumulative kept mass after each kept candidate: the u boundaries. */
  cum: number[];
  /** Mass (normalised over the top k) before each candidate: the top-p boundaries. */
  prefix: number[];
}

export interface RefSample {
  token: number;
  prob: number;
  kept: number;
}

/** Everything but the draw; `drawRef` picks the token for a u. */
export function distributionRef(
  logits: ArrayLike<number>,
  o: Omit<RefOptions, 'u'>,
  penaltyIds: ArrayLike<number> = [],
): RefDistribution {
  const v = penalize(logits, penaltyIds, o.repetitionPenalty);
  const order = topkOrder(v, o.topK);
  const l0 = v[order[0]!]!;
  const same = (a: number, b: number) => (Number.isNaN(a) && Number.isNaN(b)) || a === b;
  const w = order.map((i) => {
    const l = v[i]!;
    if (same(l, l0)) return 1;
    if (Number.isNaN(l) || l === -Infinity || l0 === Infinity) return 0;
    return Math.exp((l - l0) / o.temperature);
  });
  const total = w.reduce((a, b) => a + b, 0);
  const prefix: number[] = [];
  let acc = 0;
  for (const x of w) {
    prefix.push(acc / total);
    acc += x;
  }
  let kept = w.length;
  if (o.topP < 1) {
    for (let r = 1; r < w.length; r++) {
      if (prefix[r]! >= o.topP) {
        kept = r;
        break;
      }
    }
  }
  const z = w.slice(0, kept).reduce((a, b) => a + b, 0);
  const cum: number[] = [];
  acc = 0;
  for (let r = 0; r < kept; r++) {
    acc += w[r]!;
    cum.push(acc / z);
  }
  return { order, w, kept, cum, prefix };
}

export function drawRef(d: RefDistribution, u: number): RefSample {
  const { w, kept } = d;
  const z = w.slice(0, kept).reduce((a, b) => a + b, 0);
  let last = 0;
  for (let r = 0; r < kept; r++) if (w[r]! > 0) last = r;
  const target = Math.min(u, 0.99999994) * z;
  let chosen = last;
  let acc = 0;
  for (let r = 0; r < kept; r++) {
    acc += w[r]!;
    if (target < acc) {
      chosen = r;
      break;
    }
  }
  return { token: d.order[chosen]!, prob: w[chosen]! / z, kept };
}

export function sampleRef(logits: ArrayLike<number>, o: RefOptions, penaltyIds: ArrayLike<number> = []): RefSample {
  return drawRef(distributionRef(logits, o, penaltyIds), o.u);
}
