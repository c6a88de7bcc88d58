// argmax: greedy decoding on the GPU, two passes, so a decode step reads back one token id
// instead of V logits. Lowest index wins ties. Values are compared as order-preserving u32 keys
// (integer compares, immune to fast-math): -inf < finite < +inf, -0 == +0, NaN lowest of all.
// The repetition penalty (Hugging Face: logit > 0 ? logit / penalty : logit * penalty) is applied
// on load to ids whose bit is set in `mask` (penalty_mask.wgsl), skipped when penalty == 1.
//
// Pass 1 (!FINAL): each workgroup reduces CHUNK = WG * ITEMS consecutive logits.
//   Bindings: 0 logits [.., V] act (read; row at element `base`), 1 mask [ceil(V/32)] u32 (read),
//             2 partial [nwg] vec2<u32> (key, index) (read_write), 3 params { V, base, penalty }.
//   Dispatch: nwg = ceil(V / CHUNK) workgroups spread over x/y by grid().
// Pass 2 (FINAL): one workgroup reduces the nwg partials.
//   Bindings: 0 partial [n] vec2<u32> (read), 1 out [4] u32 (read_write), 2 params { n }.
//   out = [token, bits(prob = 1.0), bits(chosen logit after penalty), kept = 1].
//   Dispatch: exactly 1 workgroup.
// WG must be a power of two (tree reduction).
#if F16
alias act = f16;
#else
alias act = f32;
#endif

const NONE: u32 = 0xffffffffu;

#if FINAL
struct Params { n: u32 }
@group(0) @binding(0) var<storage, read> partial: array<vec2<u32>>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<uniform> p: Params;
#else
struct Params {
  V: u32,       // vocabulary size
  base: u32,    // element offset of the logits row
  penalty: f32, // repetition penalty; 1 = off
}
@group(0) @binding(0) var<storage, read> logits: array<act>;
@group(0) @binding(1) var<storage, read> mask: array<u32>;
@group(0) @binding(2) var<storage, read_write> partial: array<vec2<u32>>;
@group(0) @binding(3) var<uniform> p: Params;
#endif

override WG: u32 = 256;
override ITEMS: u32 = 16;

var<workgroup> rk: array<u32, WG>;
var<workgroup> ri: array<u32, WG>;

// Order-preserving key of an f32 (see header).
fn key(v: f32) -> u32 {
  var b = bitcast<u32>(v);
  if ((b & 0x7fffffffu) > 0x7f800000u) {
    return 0u;
  }
  if (b == 0x80000000u) {
    b = 0u;
  }
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn unkey(k: u32) -> f32 {
  return bitcast<f32>(select(~k, k & 0x7fffffffu, k >= 0x80000000u));
}

// (ak, ai) ranks before (bk, bi): larger value, then lower index. (0, NONE) ranks last.
fn better(ak: u32, ai: u32, bk: u32, bi: u32) -> bool {
  return ak > bk || (ak == bk && ai < bi);
}

fn reduce(lid: u32, k: u32, i: u32) {
  rk[lid] = k;
  ri[lid] = i;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s && better(rk[lid + s], ri[lid + s], rk[lid], ri[lid])) {
      rk[lid] = rk[lid + s];
      ri[lid] = ri[lid + s];
    }
    workgroupBarrier();
  }
}

#if FINAL
@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  var bk = 0u;
  var bi = NONE;
  for (var c = lid; c < p.n; c += WG) {
    let e = partial[c];
    if (better(e.x, e.y, bk, bi)) {
      bk = e.x;
      bi = e.y;
    }
  }
  reduce(lid, bk, bi);
  if (lid == 0u) {
    out[0] = select(ri[0], 0u, ri[0] == NONE);
    out[1] = bitcast<u32>(1.0);
    out[2] = bitcast<u32>(unkey(rk[0]));
    out[3] = 1u;
  }
}
#else
fn logit(i: u32) -> f32 {
  var v = f32(logits[p.base + i]);
  if (p.penalty != 1.0 && ((mask[i >> 5u] >> (i & 31u)) & 1u) != 0u) {
    v = select(v * p.penalty, v / p.penalty, v > 0.0);
  }
  return v;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + wid.y * nwg.x;
  let start = g * WG * ITEMS;
  if (start >= p.V) {
    return; // grid() rounding: a spare workgroup (uniform per workgroup, so barriers stay legal)
  }
  var bk = 0u;
  var bi = NONE;
  for (var j = 0u; j < ITEMS; j++) {
    let i = start + j * WG + lid;
    if (i < p.V) {
      let k = key(logit(i));
      if (better(k, i, bk, bi)) {
        bk = k;
        bi = i;
      }
    }
  }
  reduce(lid, bk, bi);
  if (lid == 0u) {
    partial[g] = vec2<u32>(rk[0], ri[0]);
  }
}
#endif
