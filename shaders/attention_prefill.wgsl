// attention_prefill: softmax(scale * q k^T + mask) v for a block of query rows, flash-style
// (online softmax over key tiles: running max m, running sum l, unnormalised output o, rescaled
// by exp(m_old - m_new) whenever the max grows), so no score matrix is stored and nothing
// overflows however large the scores or the key count. GQA: query head h reads kv head
// h / (n_heads / n_kv).
//   !SEGMENTS (causal prefill over a KV cache): query t sits at absolute position pos0 + t and
//             attends to keys [0, pos0 + t].
//   SEGMENTS  (block-diagonal, e.g. several images in one vision sequence): query t attends to
//             keys [seg[t].x, seg[t].y).
// One thread owns one query row (its q and o live in registers); the workgroup streams K and V
// tiles of BK keys through workgroup memory, converted to f32, and skips the key range that no row
// of the block needs.
//
// Bindings and params: attention_prefill_io.wgsl (appended).
// Dispatch: (ceil(T / WG), n_heads). Workgroup memory: 2 * BK * D4 vec4 (K and V tiles).
override WG: u32 = 64;
// Keys per tile (<= MAX_BK) and vec4s per head (head_dim / 4): sizes of the workgroup tiles.
override BK: u32 = 16;
override D4: u32 = 32;
// Register capacities: head_dim <= 128, tile <= 16 keys.
const MAX_D4: u32 = 32u;
const MAX_BK: u32 = 16u;
const NEG: f32 = -3.0e38;

var<workgroup> kt: array<vec4<f32>, BK * D4>;
var<workgroup> vt: array<vec4<f32>, BK * D4>;
var<workgroup> lo_a: atomic<u32>;
var<workgroup> hi_a: atomic<u32>;
var<workgroup> lo_w: u32;
var<workgroup> hi_w: u32;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let h = wid.y;
  let g = h / (p.n_heads / p.n_kv);
  let t = wid.x * WG + lid;
  let live = t < p.n_q;
  let d4 = D4;

  // This row's key range.
  var start = 0xffffffffu;
  var end = 0u;
  if (live) {
#if SEGMENTS
    let s = seg[t];
    start = s.x;
    end = s.y;
#else
    start = 0u;
    end = p.pos0 + t + 1u;
#endif
  }
  if (lid == 0u) {
    atomicStore(&lo_a, 0xffffffffu);
    atomicStore(&hi_a, 0u);
  }
  workgroupBarrier();
  if (live && end > start) {
    atomicMin(&lo_a, start);
    atomicMax(&hi_a, end);
  }
  workgroupBarrier();
  if (lid == 0u) {
    lo_w = atomicLoad(&lo_a);
    hi_w = atomicLoad(&hi_a);
  }
  let lo = workgroupUniformLoad(&lo_w);
  let hi = workgroupUniformLoad(&hi_w);

  var qr: array<vec4<f32>, MAX_D4>;
  var o: array<vec4<f32>, MAX_D4>;
  if (live) {
    let qb = p.q_off4 + t * p.q_stride4 + h * d4;
    for (var e = 0u; e < D4; e++) {
      qr[e] = vec4<f32>(q[qb + e]) * p.scale;
      o[e] = vec4<f32>(0.0);
    }
  }
  var m = NEG;
  var l = 0.0;
  var s: array<f32, MAX_BK>;

  for (var kb = lo; kb < hi; kb += BK) {
    workgroupBarrier(); // previous tile fully consumed
    for (var i = lid; i < BK * d4; i += WG) {
      let j = kb + i / d4;
      let e = i % d4;
      var kv = vec4<f32>(0.0);
      var vv = vec4<f32>(0.0);
      if (j < hi) {
        kv = load_k(p.k_off4 + j * p.k_stride4 + g * d4 + e);
        vv = load_v(p.v_off4 + j * p.v_stride4 + g * d4 + e);
      }
      kt[i] = kv;
      vt[i] = vv;
    }
    workgroupBarrier();
    // Scores of this tile for my row, and their max.
    var mt = NEG;
    var any = false;
    for (var kk = 0u; kk < BK; kk++) {
      let j = kb + kk;
      var sc = NEG;
      if (j >= start && j < end) {
        var acc = 0.0;
        for (var e = 0u; e < D4; e++) {
          acc += dot(qr[e], kt[kk * d4 + e]);
        }
        sc = acc;
        mt = max(mt, sc);
        any = true;
      }
      s[kk] = sc;
    }
    if (any) {
      let mn = max(m, mt);
      let alpha = exp(m - mn); // 0 on the first tile (m = NEG)
      m = mn;
      l *= alpha;
      for (var e = 0u; e < D4; e++) {
        o[e] *= alpha;
      }
      for (var kk = 0u; kk < BK; kk++) {
        let j = kb + kk;
        if (j >= start && j < end) {
          let pk = exp(s[kk] - m);
          l += pk;
          for (var e = 0u; e < D4; e++) {
            o[e] += pk * vt[kk * d4 + e];
          }
        }
      }
    }
  }

  if (live) {
    // An empty key range gives zeros rather than NaN.
    let inv = select(0.0, 1.0 / l, l > 0.0);
    let ob = (t * p.n_heads + h) * d4;
    for (var e = 0u; e < D4; e++) {
      out[ob + e] = vec4<act>(o[e] * inv);
    }
  }
}
