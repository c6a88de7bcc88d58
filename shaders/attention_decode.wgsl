// attention_decode: one new query token over a KV cache, split-K ("flash-decoding") pass 1.
// Workgroup (c, g) takes the keys [c * chunk, min((c + 1) * chunk, n_ctx)) of kv head g and all
// G = n_heads / n_kv query heads that share it (K and V are read once per group), and writes per
// query head the chunk's max score m, its sum l = sum exp(s - m) and the unnormalised output
// sum exp(s - m) v. attention_combine.wgsl merges the chunks.
//   phase 1: thread per key: s = scale * q . k for the G heads (q in workgroup memory)
//   phase 2: TPH threads per head: max and sum of exp over the chunk (tree in workgroup memory)
//   phase 3: threads = (key group, vec4 of head_dim): sum_j p_j v_j for all G heads, each V row
//            read once and contiguously, then the key groups summed in workgroup memory
//
// Bindings (indices in vec4 units; head_dim = 4 * D4 <= 4 * MAX_D4, G = GMAX <= MAX_G):
//   0 q      act: head h at q_off4 + h * d4                           ([n_heads, head_dim])
//   1 k      act: key j, kv head g at k_off4 + j * k_stride4 + g * d4   (cache [max_ctx, n_kv, head_dim])
//   2 v      act: same with v_off4, v_stride4
//   KV_F16 (k and v of a KV cache stored as f16 bits, on any adapter): k and v are vec2<u32>
//          arrays, one element = 4 packed halves (unpack2x16float), indexed in the same vec4 units.
//   3 part_o f32 [n_chunks, n_heads, head_dim] as vec4 (read_write)
//   4 part_ml f32 [n_chunks, n_heads] vec2 (m, l) (read_write)
//   5 params
//   SINGLE (one workgroup per kv head, no combine dispatch): one chunk holds every key (short
//          contexts): the combine of one chunk is done here (the same operations, so the same
//          bits); bindings 3 out act [n_heads, head_dim] as vec4 (read_write), 4 params.
//   WALK (with SINGLE; any context): the workgroup walks the chunks [c * chunk, ...) for
//          c = 0 .. ceil(n_ctx / chunk) - 1 in turn, each as above, and merges them as it goes
//          (M = max(M, m_c), O and L rescaled by exp(M_old - M) and the chunk's by exp(m_c - M):
//          attention_combine.wgsl's merge, online). A variant of its own: the loop and its
//          running sums measured ~10% slower per short-context step on SwiftShader.
//   ROPE_KV (the decode step's RoPE and KV-cache append folded in; no llama-4 query scale):
//          binding 0 is the token's packed, un-rotated row [q | k | v] as act (scalar), k and v
//          are read_write, and the 1D RoPE table (rope.wgsl's, (cos, sin) pairs) comes after the
//          outputs (SINGLE: 4; else 5). The token sits at pos = n_ctx - 1. Every workgroup
//          rotates its G query heads itself, with rope_kv_write.wgsl's arithmetic (same table
//          lookups, angle addition, act rounding); the workgroup whose chunk holds pos (the last;
//          with SINGLE the only one) also rotates kv head g's k and writes it and v into cache row pos, as rope_kv_write
//          stores them, then reads the row back like any other (storageBarrier): no other
//          workgroup reads row pos, so the result is bit-identical to rope_kv_write then this
//          kernel without ROPE_KV.
// Dispatch: (n_chunks, n_kv) with n_chunks = ceil(n_ctx / chunk), chunk <= CH (an override);
// SINGLE: (1, n_kv).
#if F16
alias act = f16;
#else
alias act = f32;
#endif

struct Params {
  n_ctx: u32,
  n_heads: u32,
  n_kv: u32,
  q_off4: u32,
  k_stride4: u32,
  k_off4: u32,
  v_stride4: u32,
  v_off4: u32,
  chunk: u32,
  tph: u32,
  scale: f32,
#if ROPE_KV
  lo_size: u32,
  half: u32,
  k_new: u32,
  v_new: u32,
  attn_factor: f32,
#endif
}

#if ROPE_KV
@group(0) @binding(0) var<storage, read> qkv: array<act>;
#else
@group(0) @binding(0) var<storage, read> q: array<vec4<act>>;
#endif
#if KV_F16 && ROPE_KV
@group(0) @binding(1) var<storage, read_write> k: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read_write> v: array<vec2<u32>>;
#elif KV_F16
@group(0) @binding(1) var<storage, read> k: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read> v: array<vec2<u32>>;
#endif
#if KV_F16

fn unpack4(h: vec2<u32>) -> vec4<f32> {
  return vec4<f32>(unpack2x16float(h.x), unpack2x16float(h.y));
}
fn load_k(i: u32) -> vec4<f32> {
  return unpack4(k[i]);
}
fn load_v(i: u32) -> vec4<f32> {
  return unpack4(v[i]);
}
#elif ROPE_KV
@group(0) @binding(1) var<storage, read_write> k: array<vec4<act>>;
@group(0) @binding(2) var<storage, read_write> v: array<vec4<act>>;
#else
@group(0) @binding(1) var<storage, read> k: array<vec4<act>>;
@group(0) @binding(2) var<storage, read> v: array<vec4<act>>;
#endif
#if !KV_F16

fn load_k(i: u32) -> vec4<f32> {
  return vec4<f32>(k[i]);
}
fn load_v(i: u32) -> vec4<f32> {
  return vec4<f32>(v[i]);
}
#endif
#if SINGLE && ROPE_KV
@group(0) @binding(3) var<storage, read_write> out: array<vec4<act>>;
@group(0) @binding(4) var<storage, read> tab: array<vec2<f32>>;
@group(0) @binding(5) var<uniform> p: Params;
#elif SINGLE
@group(0) @binding(3) var<storage, read_write> out: array<vec4<act>>;
@group(0) @binding(4) var<uniform> p: Params;
#elif ROPE_KV
@group(0) @binding(3) var<storage, read_write> part_o: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> part_ml: array<vec2<f32>>;
@group(0) @binding(5) var<storage, read> tab: array<vec2<f32>>;
@group(0) @binding(6) var<uniform> p: Params;
#else
@group(0) @binding(3) var<storage, read_write> part_o: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> part_ml: array<vec2<f32>>;
@group(0) @binding(5) var<uniform> p: Params;
#endif

#if ROPE_KV
// Pair (j, j + half) of the packed row rotated for position pos at table entry i, as
// rope_kv_write.wgsl's rotate() computes and rounds it (without writing it back).
fn rotated(j: u32, i: u32, pos: u32) -> vec2<act> {
  let a = tab[(pos % p.lo_size) * p.half + i];
  let b = tab[(p.lo_size + pos / p.lo_size) * p.half + i];
  let cs = vec2<f32>(a.x * b.x - a.y * b.y, a.y * b.x + a.x * b.y);
  let c = cs.x * p.attn_factor;
  let s = cs.y * p.attn_factor;
  let x1 = f32(qkv[j]);
  let x2 = f32(qkv[j + p.half]);
  let y1 = act((x1 * c - x2 * s) * 1.0);
  let y2 = act((x2 * c + x1 * s) * 1.0);
  return vec2<act>(y1, y2);
}

// Cache elements e and e + 1 (e even) of k / v, already act-rounded, stored as rope_kv_write
// stores them (KV_F16: one u32 of two halves, here a component of the vec2<u32> of 4 halves).
fn store_k(e: u32, a: act, b: act) {
#if KV_F16
  k[e / 4u][(e / 2u) % 2u] = pack2x16float(vec2<f32>(f32(a), f32(b)));
#else
  k[e / 4u][e % 4u] = a;
  k[e / 4u][e % 4u + 1u] = b;
#endif
}

fn store_v(e: u32, a: act, b: act) {
#if KV_F16
  v[e / 4u][(e / 2u) % 2u] = pack2x16float(vec2<f32>(f32(a), f32(b)));
#else
  v[e / 4u][e % 4u] = a;
  v[e / 4u][e % 4u + 1u] = b;
#endif
}
#endif

override WG: u32 = 256;
// Chunk capacity (keys per workgroup) and query heads per kv head (loop bounds known at pipeline
// creation, so the per-head accumulators stay in registers).
override CH: u32 = 256;
override GMAX: u32 = 4;
// vec4s per head (head_dim / 4), <= MAX_D4.
override D4: u32 = 32;
const MAX_D4: u32 = 32u;
const MAX_G: u32 = 8u;

var<workgroup> qs: array<vec4<f32>, GMAX * D4>;
var<workgroup> sc: array<f32, GMAX * CH>;
var<workgroup> red: array<f32, WG>;
var<workgroup> pw: array<vec4<f32>, WG>;
var<workgroup> mg: array<f32, GMAX>;
var<workgroup> lg: array<f32, GMAX>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let g = wid.y;
  let G = GMAX; // = n_heads / n_kv, checked by the wrapper
  let d4 = D4;
#if WALK
  // Every chunk in turn; the running max, sum and output per head (threads lid < d4 hold O).
  let chunks = (p.n_ctx + p.chunk - 1u) / p.chunk;
  var M: array<f32, MAX_G>;
  var L: array<f32, MAX_G>;
  var O: array<vec4<f32>, MAX_G>;
#endif

#if ROPE_KV
  let pos = p.n_ctx - 1u;
  let hd = 2u * p.half;
  // This workgroup's G query heads, rotated: thread = (head hh, pair index i).
  for (var t = lid; t < G * p.half; t += WG) {
    let hh = t / p.half;
    let i = t % p.half;
    let y = rotated(p.q_off4 * 4u + (g * G + hh) * hd + i, i, pos);
    let e = hh * hd + i;
    qs[e / 4u][e % 4u] = f32(y.x) * p.scale;
    qs[(e + p.half) / 4u][(e + p.half) % 4u] = f32(y.y) * p.scale;
  }
#if SINGLE
  {
#else
  if ((wid.x + 1u) * p.chunk >= p.n_ctx) {
#endif
    // The chunk holding pos: kv head g's rotated k and its v into cache row pos, element
    // pairs (2 i2, 2 i2 + 1) and their + half partners per thread (whole u32s of an f16 cache).
    let krow = (p.k_off4 + pos * p.k_stride4) * 4u + g * hd;
    let vrow = (p.v_off4 + pos * p.v_stride4) * 4u + g * hd;
    for (var i2 = lid; i2 < p.half / 2u; i2 += WG) {
      let i = 2u * i2;
      let r0 = rotated(p.k_new + g * hd + i, i, pos);
      let r1 = rotated(p.k_new + g * hd + i + 1u, i + 1u, pos);
      store_k(krow + i, r0.x, r1.x);
      store_k(krow + i + p.half, r0.y, r1.y);
    }
    for (var j2 = lid; j2 < p.half; j2 += WG) {
      let j = 2u * j2;
      store_v(vrow + j, qkv[p.v_new + g * hd + j], qkv[p.v_new + g * hd + j + 1u]);
    }
  }
  storageBarrier();
  workgroupBarrier();
#else
  for (var i = lid; i < G * d4; i += WG) {
    qs[i] = vec4<f32>(q[p.q_off4 + (g * G) * d4 + i]) * p.scale;
  }
  workgroupBarrier();
#endif

#if WALK
  for (var it = 0u; it < chunks; it++) {
    let c = it;
#else
  {
    let c = wid.x;
#endif
    let j0 = c * p.chunk;
    let n = min(p.chunk, p.n_ctx - j0);

    // Phase 1: scores.
    for (var kk = lid; kk < n; kk += WG) {
      var acc: array<f32, MAX_G>;
      for (var hh = 0u; hh < G; hh++) {
        acc[hh] = 0.0;
      }
      let kb = p.k_off4 + (j0 + kk) * p.k_stride4 + g * d4;
      for (var e = 0u; e < d4; e++) {
        let kv = load_k(kb + e);
        for (var hh = 0u; hh < G; hh++) {
          acc[hh] += dot(qs[hh * d4 + e], kv);
        }
      }
      for (var hh = 0u; hh < G; hh++) {
        sc[hh * CH + kk] = acc[hh];
      }
    }
    workgroupBarrier();

    // Phase 2: per-head max, then exp and sum. Threads [hg * tph, (hg + 1) * tph) serve head hg.
    let hg = lid / p.tph;
    let r = lid % p.tph;
    let mine = hg < G;
    var mx = -3.0e38;
    if (mine) {
      for (var kk = r; kk < n; kk += p.tph) {
        mx = max(mx, sc[hg * CH + kk]);
      }
    }
    red[lid] = mx;
    for (var st = p.tph / 2u; st > 0u; st >>= 1u) {
      workgroupBarrier();
      if (mine && r < st) {
        red[lid] = max(red[lid], red[lid + st]);
      }
    }
    workgroupBarrier();
    var sm = 0.0;
    if (mine) {
      let m = red[hg * p.tph];
      for (var kk = r; kk < n; kk += p.tph) {
        let e = exp(sc[hg * CH + kk] - m);
        sc[hg * CH + kk] = e;
        sm += e;
      }
      if (r == 0u) {
        mg[hg] = m;
      }
    }
    workgroupBarrier();
    red[lid] = sm;
    for (var st = p.tph / 2u; st > 0u; st >>= 1u) {
      workgroupBarrier();
      if (mine && r < st) {
        red[lid] = red[lid] + red[lid + st];
      }
    }
    workgroupBarrier();
    if (mine && r == 0u) {
      lg[hg] = red[lid];
    }
    workgroupBarrier();

    // Phase 3: unnormalised output. Thread = (key group kg, vec4 column e): KG = WG / d4 groups
    // split the chunk's keys, each V row is read once for all G heads, then the groups are summed.
    let e = lid % d4;
    let kg = lid / d4;
    let KG = WG / d4;
    var acc: array<vec4<f32>, MAX_G>;
    for (var h2 = 0u; h2 < G; h2++) {
      acc[h2] = vec4<f32>(0.0);
    }
    if (kg < KG) {
      let vb = p.v_off4 + j0 * p.v_stride4 + g * d4 + e;
      for (var kk = kg; kk < n; kk += KG) {
        let vv = load_v(vb + kk * p.v_stride4);
        for (var h2 = 0u; h2 < G; h2++) {
          acc[h2] += sc[h2 * CH + kk] * vv;
        }
      }
    }
    for (var h2 = 0u; h2 < G; h2++) {
      workgroupBarrier();
      pw[lid] = acc[h2];
      workgroupBarrier();
      if (lid < d4) {
        var o = pw[lid];
        for (var r = 1u; r < KG; r++) {
          o += pw[r * d4 + lid];
        }
        let qh = g * G + h2;
#if WALK
        if (it == 0u) {
          O[h2] = o;
          M[h2] = mg[h2];
          L[h2] = lg[h2];
        } else {
          let m1 = max(M[h2], mg[h2]);
          let a = exp(M[h2] - m1);
          let b = exp(mg[h2] - m1);
          O[h2] = O[h2] * a + o * b;
          L[h2] = L[h2] * a + lg[h2] * b;
          M[h2] = m1;
        }
#elif SINGLE
        // The only chunk: finish as attention_combine.wgsl does for one chunk (its weight
        // exp(m - m) = 1, so the same operations and the same bits): out = o / l.
        let l = lg[h2];
        out[qh * d4 + lid] = vec4<act>(o * select(0.0, 1.0 / l, l > 0.0));
#else
        part_o[(c * p.n_heads + qh) * d4 + lid] = o;
        if (lid == 0u) {
          part_ml[c * p.n_heads + qh] = vec2<f32>(mg[h2], lg[h2]);
        }
#endif
      }
    }
  }

#if WALK
  // Finish as attention_combine.wgsl does: out = O / L.
  if (lid < d4) {
    for (var h2 = 0u; h2 < G; h2++) {
      let l = L[h2];
      out[(g * G + h2) * d4 + lid] = vec4<act>(O[h2] * select(0.0, 1.0 / l, l > 0.0));
    }
  }
#endif
}
