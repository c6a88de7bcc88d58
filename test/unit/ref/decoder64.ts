/**
 * A float64 Mistral decoder on the CPU (HF semantics: RMSNorm, rotate-half RoPE, causal GQA
 * attention scaled by 1/sqrt(head_dim), SiLU-gated MLP), for checking weights loaded from a
 * GGUF against the float64 goldens of `fixtures/gguf/kq` without a GPU. Tiny models only.
 */
import type { TextConfig } from '../../../src/config.js';

export type Weights = (name: string) => Float64Array;

function rmsnorm(x: Float64Array, w: Float64Array, eps: number): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const r = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => v * r * w[i]!);
}

/** y = W x for W [rows, cols] row-major. */
function matvec(w: Float64Array, x: Float64Array, rows: number): Float64Array {
  const cols = x.length;
  const y = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += w[r * cols + c]! * x[c]!;
    y[r] = s;
  }
  return y;
}

function rope(v: Float64Array, heads: number, d: number, pos: number, theta: number): void {
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < d / 2; j++) {
      const a = pos * theta ** (-(2 * j) / d);
      const c = Math.cos(a);
      const s = Math.sin(a);
      const x0 = v[h * d + j]!;
      const x1 = v[h * d + j + d / 2]!;
      v[h * d + j] = x0 * c - x1 * s;
      v[h * d + j + d / 2] = x1 * c + x0 * s;
    }
  }
}

/** Logits [S, vocab] for every position of `ids`. */
export function decoderLogits(t: TextConfig, W: Weights, ids: readonly number[]): Float64Array[] {
  const H = t.hiddenSize;
  const d = t.headDim;
  const S = ids.length;
  const embed = W('language_model.model.embed_tokens.weight');
  let xs = ids.map((id) => embed.slice(id * H, (id + 1) * H));
  for (let l = 0; l < t.numLayers; l++) {
    const p = (n: string) => W(`language_model.model.layers.${l}.${n}`);
    const [wq, wk, wv, wo] = ['q', 'k', 'v', 'o'].map((n) => p(`self_attn.${n}_proj.weight`)) as [Float64Array, Float64Array, Float64Array, Float64Array];
    const normed = xs.map((x) => rmsnorm(x, p('input_layernorm.weight'), t.normEps));
    const q = normed.map((x, pos) => {
      const v = matvec(wq, x, t.numHeads * d);
      rope(v, t.numHeads, d, pos, t.ropeTheta);
      return v;
    });
    const k = normed.map((x, pos) => {
      const v = matvec(wk, x, t.numKvHeads * d);
      rope(v, t.numKvHeads, d, pos, t.ropeTheta);
      return v;
    });
    const v = normed.map((x) => matvec(wv, x, t.numKvHeads * d));
    const group = t.numHeads / t.numKvHeads;
    xs = xs.map((x, i) => {
      const att = new Float64Array(t.numHeads * d);
      for (let h = 0; h < t.numHeads; h++) {
        const kh = Math.floor(h / group);
        const scores: number[] = [];
        for (let j = 0; j <= i; j++) {
          let s = 0;
          for (let e = 0; e < d; e++) s += q[i]![h * d + e]! * k[j]![kh * d + e]!;
          scores.push(s / Math.sqrt(d));
        }
        const m = Math.max(...scores);
        const ex = scores.map((s) => Math.exp(s - m));
        const z = ex.reduce((a, b) => a + b, 0);
        for (let j = 0; j <= i; j++) {
          for (let e = 0; e < d; e++) att[h * d + e]! += (ex[j]! / z) * v[j]![kh * d + e]!;
        }
      }
      const o = matvec(wo, att, H);
      const h1 = x.map((xv, c) => xv + o[c]!);
      const n2 = rmsnorm(h1, p('post_attention_layernorm.weight'), t.normEps);
      const g = matvec(p('mlp.gate_proj.weight'), n2, t.intermediateSize);
      const u = matvec(p('mlp.up_proj.weight'), n2, t.intermediateSize);
      const act = g.map((gv, c) => (gv / (1 + Math.exp(-gv))) * u[c]!);
      const down = matvec(p('mlp.down_proj.weight'), act, H);
      return h1.map((hv, c) => hv + down[c]!);
    });
  }
  const head = t.tieWordEmbeddings ? embed : W('language_model.lm_head.weight');
  return xs.map((x) => matvec(head, rmsnorm(x, W('language_model.model.norm.weight'), t.normEps), t.vocabSize));
}
