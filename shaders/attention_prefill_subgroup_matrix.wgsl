// attention_prefill_subgroup_matrix: attention_prefill.wgsl's product (softmax(scale q k^T + mask) v
// for a block of query rows, online softmax over key tiles; causal over a KV cache, or SEGMENTS'
// per-row key ranges) with both products on the adapter's matrix units through
// `chromium_experimental_subgroup_matrix`: the same bindings, params, masks and output.
// A workgroup is one subgroup (matrix offsets must be uniform) and owns F query rows of one head
// (F x F fragments: 16 with FRAG16, else 8). Per tile of BK = CK F keys:
//   1. K's rows, rounded to f16, are staged in workgroup memory; S = (scale q) K^T is CK result
//      fragments, q held as D / F left fragments loaded once (rounded to f16 once);
//   2. S goes through workgroup memory to the lanes, one query row each: the running max m and
//      sum l, p = exp(s - m) rounded to f16 (l sums the rounded p, so the normalisation matches
//      what is multiplied), alpha = exp(m_old - m_new);
//   3. only where some row's max grew over a non-empty history (alpha < 1: rare after the first
//      tiles), the output fragments go through workgroup memory to be scaled by alpha per row:
//      fragments have no per-row operation;
//   4. V's rows are staged the same way and O += P V in f32 fragments.
// Rows and keys outside a range get p = 0, and staged rows past the block's key range are zeros
// (never stale memory, which could hold anything 0 * x would not clear). O / l per row at the end.
// Precision: q scale, k, v and p rounded to f16 once each (2^-11 relative; exact for an f16
// cache), products and sums f32. A score s moves by up to 2^-10 sum |q k| scale, a weight by that
// relative amount: unlike attention_prefill.wgsl this is not the f32 path's accuracy, and it is
// chosen only where the device's subgroup-matrix check made it the default.
// Bindings and params: attention_prefill_io.wgsl (appended), as attention_prefill.wgsl's.
// Workgroup memory: BK D halves (K or V; q before the loop) + F max(D, BK) floats (S, or O while
// it is rescaled and written) + F BK halves (P) + 3 F floats.
// F16 is always set (the operands are f16); ACT_F16 makes the activations f16.
// Dispatch: (ceil(T / F), n_heads) workgroups of SG lanes.
enable chromium_experimental_subgroup_matrix;

/** Lanes of the subgroup (the adapter's subgroup size): the workgroup. */
override SG: u32 = 32u;
/** head_dim / 4 (head_dim a multiple of F, at most 128) and key fragments per tile. */
override D4: u32 = 32u;
override CK: u32 = 1u;
const MAX_DF: u32 = 128u / F;
const NEG: f32 = -3.0e38;

override D: u32 = 4u * D4;
override DF: u32 = D / F;
override BK: u32 = CK * F;
/** Row stride of `stage`: S rows are BK wide, O rows D. */
override SW: u32 = max(D, BK);

var<workgroup> kv: array<f16, BK * D>; // [BK keys][D] (q before the loop: [F rows][D])
var<workgroup> stage: array<f32, F * SW>; // S [F][BK] or O [F][D], row-major
var<workgroup> pt: array<f16, F * BK>; // P [F][BK]
var<workgroup> row_m: array<f32, F>;
var<workgroup> row_l: array<f32, F>;
var<workgroup> row_alpha: array<f32, F>;
var<workgroup> grew: atomic<u32>;
var<workgroup> grew_w: u32;
var<workgroup> lo_w: u32;
var<workgroup> hi_w: u32;

/** Key range [start, end) of query row t (empty for rows past n_q). */
fn key_range(t: u32) -> vec2<u32> {
  if (t >= p.n_q) {
    return vec2<u32>(0u, 0u);
  }
#if SEGMENTS
  return seg[t];
#else
  return vec2<u32>(0u, p.pos0 + t + 1u);
#endif
}

/** Stages rows kb .. kb + BK - 1 of K (or V) as f16, zeros past `hi`. */
fn stage_keys(kb: u32, hi: u32, g: u32, lane: u32, values: bool) {
  for (var i = lane; i < BK * D4; i += SG) {
    let j = kb + i / D4;
    let e = i % D4;
    var x = vec4<f32>(0.0);
    if (j < hi) {
      if (values) {
        x = load_v(p.v_off4 + j * p.v_stride4 + g * D4 + e);
      } else {
        x = load_k(p.k_off4 + j * p.k_stride4 + g * D4 + e);
      }
    }
    let o = (i / D4) * D + 4u * e;
    kv[o] = f16(x.x);
    kv[o + 1u] = f16(x.y);
    kv[o + 2u] = f16(x.z);
    kv[o + 3u] = f16(x.w);
  }
}

@compute @workgroup_size(SG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let h = wid.y;
  let g = h / (p.n_heads / p.n_kv);
  let q0 = wid.x * F;

  // The block's key range, its rows' state, and q (scaled, f16) staged in `kv`.
  if (lane == 0u) {
    var lo = 0xffffffffu;
    var hi = 0u;
    for (var r = 0u; r < F; r++) {
      let kr = key_range(q0 + r);
      if (kr.y > kr.x) {
        lo = min(lo, kr.x);
        hi = max(hi, kr.y);
      }
    }
    lo_w = lo;
    hi_w = hi;
    atomicStore(&grew, 0u);
  }
  for (var r = lane; r < F; r += SG) {
    row_m[r] = NEG;
    row_l[r] = 0.0;
  }
  for (var i = lane; i < F * D4; i += SG) {
    let t = q0 + i / D4;
    var x = vec4<f32>(0.0);
    if (t < p.n_q) {
      x = vec4<f32>(q[p.q_off4 + t * p.q_stride4 + h * D4 + i % D4]) * p.scale;
    }
    let o = (i / D4) * D + 4u * (i % D4);
    kv[o] = f16(x.x);
    kv[o + 1u] = f16(x.y);
    kv[o + 2u] = f16(x.z);
    kv[o + 3u] = f16(x.w);
  }
  let lo = workgroupUniformLoad(&lo_w);
  let hi = workgroupUniformLoad(&hi_w);
  var qf: array<Left, MAX_DF>;
  for (var d = 0u; d < DF; d++) {
    qf[d] = subgroupMatrixLoad<Left, row_major>(&kv, d * F, D);
  }
  var o: array<Result, MAX_DF>;
  // Each tile's S starts from this, never written: a matrix `var` declared without an
  // initializer in the loop body kept the previous iteration's sums under Dawn on lavapipe 26
  // (WGSL says it is zero each time).
  var zero: Result;

  for (var kb = lo; kb < hi; kb += BK) {
    workgroupBarrier(); // the previous tile's P V (or the q loads) done with kv and pt
    stage_keys(kb, hi, g, lane, false);
    workgroupBarrier();
    for (var c = 0u; c < CK; c++) {
      var s = zero;
      for (var d = 0u; d < DF; d++) {
        s = subgroupMatrixMultiplyAccumulate(qf[d], subgroupMatrixLoad<Right, col_major>(&kv, c * F * D + d * F, D), s);
      }
      subgroupMatrixStore<row_major>(&stage, c * F, s, BK);
    }
    workgroupBarrier();

    for (var r = lane; r < F; r += SG) {
      let kr = key_range(q0 + r);
      let m_old = row_m[r];
      var mt = NEG;
      for (var j = 0u; j < BK; j++) {
        let key = kb + j;
        if (key >= kr.x && key < kr.y) {
          mt = max(mt, stage[r * BK + j]);
        }
      }
      let m = max(m_old, mt);
      let alpha = exp(m_old - m); // 0 on a row's first keys (m_old = NEG); 1 while nothing is seen
      var sum = 0.0;
      for (var j = 0u; j < BK; j++) {
        let key = kb + j;
        var pk = f16(0.0);
        if (key >= kr.x && key < kr.y) {
          pk = f16(exp(stage[r * BK + j] - m));
        }
        pt[r * BK + j] = pk;
        sum += f32(pk);
      }
      let l_old = row_l[r];
      row_l[r] = l_old * alpha + sum;
      row_m[r] = m;
      row_alpha[r] = alpha;
      if (alpha < 1.0 && l_old > 0.0) {
        atomicOr(&grew, 1u);
      }
    }
    workgroupBarrier(); // S read, P and alpha written; kv free for V
    stage_keys(kb, hi, g, lane, true);
    if (lane == 0u) {
      grew_w = atomicExchange(&grew, 0u);
    }
    if (workgroupUniformLoad(&grew_w) != 0u) {
      for (var d = 0u; d < DF; d++) {
        subgroupMatrixStore<row_major>(&stage, d * F, o[d], D);
      }
      workgroupBarrier();
      for (var e = lane; e < F * D; e += SG) {
        stage[e] *= row_alpha[e / D];
      }
      workgroupBarrier();
      for (var d = 0u; d < DF; d++) {
        o[d] = subgroupMatrixLoad<Result, row_major>(&stage, d * F, D);
      }
    }
    workgroupBarrier(); // V staged
    for (var c = 0u; c < CK; c++) {
      let pl = subgroupMatrixLoad<Left, row_major>(&pt, c * F, BK);
      for (var d = 0u; d < DF; d++) {
        o[d] = subgroupMatrixMultiplyAccumulate(pl, subgroupMatrixLoad<Right, row_major>(&kv, c * F * D + d * F, D), o[d]);
      }
    }
  }

  // O / l to the output rows of this block (zeros for an empty key range, never NaN).
  workgroupBarrier();
  for (var d = 0u; d < DF; d++) {
    subgroupMatrixStore<row_major>(&stage, d * F, o[d], D);
  }
  workgroupBarrier();
  for (var i = lane; i < F * D4; i += SG) {
    let r = i / D4;
    let t = q0 + r;
    if (t < p.n_q) {
      let l = row_l[r];
      let inv = select(0.0, 1.0 / l, l > 0.0);
      let b = r * D + 4u * (i % D4);
      let x = vec4<f32>(stage[b], stage[b + 1u], stage[b + 2u], stage[b + 3u]) * inv;
      out[(t * p.n_heads + h) * D4 + i % D4] = vec4<act>(x);
    }
  }
}
