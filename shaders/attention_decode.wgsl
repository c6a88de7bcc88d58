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
//   SINGLE (one chunk holds every key, n_chunks = 1: short contexts): the combine is done here;
//   bindings 3 out act [n_heads, head_dim] as vec4 (read_write), 4 params.
// Dispatch: (n_chunks, n_kv) with n_chunks = ceil(n_ctx / chunk), chunk <= CH (an override).
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
}

@group(0) @binding(0) var<storage, read> q: array<vec4<act>>;
#if KV_F16
@group(0) @binding(1) var<storage, read> k: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read> v: array<vec2<u32>>;

fn unpack4(h: vec2<u32>) -> vec4<f32> {
  return vec4<f32>(unpack2x16float(h.x), unpack2x16float(h.y));
}
fn load_k(i: u32) -> vec4<f32> {
  return unpack4(k[i]);
}
fn load_v(i: u32) -> vec4<f32> {
  return unpack4(v[i]);
}
#else
@group(0) @binding(1) var<storage, read> k: array<vec4<act>>;
@group(0) @binding(2) var<storage, read> v: array<vec4<act>>;

fn load_k(i: u32) -> vec4<f32> {
  return vec4<f32>(k[i]);
}
fn load_v(i: u32) -> vec4<f32> {
  return vec4<f32>(v[i]);
}
#endif
#if SINGLE
@group(0) @binding(3) var<storage, read_write> out: array<vec4<act>>;
@group(0) @binding(4) var<uniform> p: Params;
#else
@group(0) @binding(3) var<storage, read_write> part_o: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> part_ml: array<vec2<f32>>;
@group(0) @binding(5) var<uniform> p: Params;
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
  let c = wid.x;
  let g = wid.y;
  let G = GMAX; // = n_heads / n_kv, checked by the wrapper
  let d4 = D4;
  let j0 = c * p.chunk;
  let n = min(p.chunk, p.n_ctx - j0);

  for (var i = lid; i < G * d4; i += WG) {
    qs[i] = vec4<f32>(q[p.q_off4 + (g * G) * d4 + i]) * p.scale;
  }
  workgroupBarrier();

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
#if SINGLE
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
