// sample_topk: temperature / top-k / top-p sampling on the GPU, two passes, so a decode step
// reads back one token id instead of V logits. Same order as Hugging Face's logits processors:
// repetition penalty (on load, ids whose bit is set in `mask`, see penalty_mask.wgsl; HF rule
// logit > 0 ? logit / penalty : logit * penalty), temperature, top-k, top-p, then one draw with
// the host's uniform u in [0, 1) (from a seeded PRNG, so a seed reproduces a generation).
// Candidates are ranked by order-preserving u32 keys of the penalised logits (integer compares:
// -inf < finite < +inf, -0 == +0, NaN lowest), larger first, lower index first on ties: a total,
// deterministic order.
//
// Pass 1 (!FINAL): workgroup g bitonic-sorts logits[g*CHUNK .. (g+1)*CHUNK) in workgroup memory
//   (CHUNK = WG * ITEMS, a power of two, >= k) and writes its first k in rank order.
//   Bindings: 0 logits [.., V] act (read; row at element `base`), 1 mask [ceil(V/32)] u32 (read),
//             2 cand [nwg * k] vec2<u32> (key, index; index NONE = no candidate) (read_write),
//             3 params { V, base, k, penalty }.
//   Dispatch: nwg = ceil(V / CHUNK) workgroups spread over x/y by grid().
// Pass 2 (FINAL): one workgroup merges the pass-1 lists (already in rank order) into the global
//   top k: k rounds, each taking the best list head (no element needs marking),
//   then thread 0: weights w_r = exp((l_r - l_0) / temperature) (w = 1 for ties with the max,
//   0 for -inf / NaN, or for everything below a +inf max), top-p keeps the shortest prefix whose
//   mass before the last kept entry is < topP (topP >= 1 keeps all k), and the draw picks the first
//   kept r with cumsum(w)_r > u * sum(kept w).
//   Bindings: 0 cand [lists * k] vec2<u32> (read), 1 out [4] u32 (read_write),
//             2 params { lists, k, chunk, temperature, topP, u }.
//   out = [token, bits(prob of token among the kept), bits(its penalised logit), kept count].
//   Dispatch: exactly 1 workgroup.
// k <= KMAX (override, 64 by default), lists <= HEADS * WG. WG must be a power of two.
#if F16
alias act = f16;
#else
alias act = f32;
#endif

const NONE: u32 = 0xffffffffu;
const NEG_INF_KEY: u32 = 0x007fffffu; // key(-inf)
const POS_INF_KEY: u32 = 0xff800000u; // key(+inf)

#if FINAL
struct Params {
  lists: u32,       // pass-1 workgroups: sorted lists of k candidates each
  k: u32,           // top-k
  chunk: u32,       // logits per pass-1 workgroup: list of index i is i / chunk
  temperature: f32, // > 0
  topP: f32,        // (0, 1]
  u: f32,           // uniform draw in [0, 1)
}
@group(0) @binding(0) var<storage, read> cand: array<vec2<u32>>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<uniform> p: Params;
#else
struct Params {
  V: u32,       // vocabulary size
  base: u32,    // element offset of the logits row
  k: u32,       // candidates per workgroup
  penalty: f32, // repetition penalty; 1 = off
}
@group(0) @binding(0) var<storage, read> logits: array<act>;
@group(0) @binding(1) var<storage, read> mask: array<u32>;
@group(0) @binding(2) var<storage, read_write> cand: array<vec2<u32>>;
@group(0) @binding(3) var<uniform> p: Params;
#endif

override WG: u32 = 256;
override ITEMS: u32 = 4;
override KMAX: u32 = 64;
const HEADS: u32 = 4u; // pass 2 merges at most HEADS * WG lists

var<workgroup> rk: array<u32, WG>;
var<workgroup> ri: array<u32, WG>;

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

// Reduces every thread's (k, i) to the best and returns it to every thread.
fn reduce(lid: u32, k: u32, i: u32) -> vec2<u32> {
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
  let w = vec2<u32>(rk[0], ri[0]);
  workgroupBarrier(); // everyone has read rk[0] / ri[0] before the next round overwrites them
  return w;
}

#if FINAL
var<workgroup> tk: array<u32, KMAX>;
var<workgroup> ti: array<u32, KMAX>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  // k-way merge: thread lid owns lists lid + j * WG (j < HEADS) and the read position in each.
  var head: array<u32, HEADS>;
  for (var j = 0u; j < HEADS; j++) {
    head[j] = 0u;
  }
  for (var r = 0u; r < p.k; r++) {
    var bk = 0u;
    var bi = NONE;
    for (var j = 0u; j < HEADS; j++) {
      let l = lid + j * WG;
      if (l < p.lists && head[j] < p.k) {
        let e = cand[l * p.k + head[j]];
        if (better(e.x, e.y, bk, bi)) {
          bk = e.x;
          bi = e.y;
        }
      }
    }
    let w = reduce(lid, bk, bi);
    if (w.y != NONE) {
      let l = w.y / p.chunk; // the list (pass-1 workgroup) the winner came from
      if (l % WG == lid) {
        head[l / WG] += 1u;
      }
    }
    if (lid == 0u) {
      tk[r] = w.x;
      ti[r] = w.y;
    }
  }
  if (lid != 0u) {
    return;
  }
  // Thread 0: softmax with temperature over the m valid candidates, top-p, draw.
  var m = 0u;
  for (var r = 0u; r < p.k; r++) {
    if (ti[r] != NONE) {
      m = r + 1u;
    }
  }
  if (m == 0u) {
    out[0] = 0u;
    out[1] = bitcast<u32>(0.0);
    out[2] = bitcast<u32>(unkey(0u));
    out[3] = 0u;
    return;
  }
  let k0 = tk[0];
  let l0 = unkey(k0);
  var total = 0.0;
  for (var r = 0u; r < m; r++) {
    total += weight(r, k0, l0);
  }
  var kept = m;
  if (p.topP < 1.0) {
    var before = 0.0;
    for (var r = 0u; r < m; r++) {
      if (r > 0u && before >= p.topP * total) {
        kept = r;
        break;
      }
      before += weight(r, k0, l0);
    }
  }
  var z = 0.0;
  var last = 0u;
  for (var r = 0u; r < kept; r++) {
    let w = weight(r, k0, l0);
    z += w;
    if (w > 0.0) {
      last = r;
    }
  }
  let goal = min(p.u, 0.99999994) * z;
  var chosen = last;
  var cum = 0.0;
  for (var r = 0u; r < kept; r++) {
    cum += weight(r, k0, l0);
    if (goal < cum) {
      chosen = r;
      break;
    }
  }
  out[0] = ti[chosen];
  out[1] = bitcast<u32>(weight(chosen, k0, l0) / z);
  out[2] = bitcast<u32>(unkey(tk[chosen]));
  out[3] = kept;
}

// Unnormalised probability of sorted candidate r; k0 / l0 are the top candidate's key / logit.
fn weight(r: u32, k0: u32, l0: f32) -> f32 {
  let kr = tk[r];
  if (kr == k0) {
    return 1.0;
  }
  if (kr <= NEG_INF_KEY || k0 >= POS_INF_KEY) {
    return 0.0;
  }
  return exp((unkey(kr) - l0) / p.temperature);
}
#else
// The chunk, sorted in place: key and global index of each slot.
var<workgroup> sk: array<u32, WG * ITEMS>;
var<workgroup> si: array<u32, WG * ITEMS>;

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
  let n = WG * ITEMS; // CHUNK, a power of two
  let start = g * n;
  if (start >= p.V) {
    return; // grid() rounding: a spare workgroup (uniform per workgroup, so barriers stay legal)
  }
  for (var s = lid; s < n; s += WG) {
    let i = start + s;
    var k = 0u;
    var idx = NONE; // past the end: ranks last
    if (i < p.V) {
      k = key(logit(i));
      idx = i;
    }
    sk[s] = k;
    si[s] = idx;
  }
  workgroupBarrier();
  // Bitonic sort of the chunk into rank order (log2(n) * (log2(n) + 1) / 2 barrier stages).
  for (var size = 2u; size <= n; size <<= 1u) {
    for (var stride = size >> 1u; stride > 0u; stride >>= 1u) {
      for (var t = lid; t < n / 2u; t += WG) {
        let a = 2u * stride * (t / stride) + (t % stride);
        let b = a + stride;
        let first = (a & size) == 0u; // this block sorts into rank order, the other reversed
        if (better(sk[b], si[b], sk[a], si[a]) == first) {
          let tk = sk[a];
          let ti = si[a];
          sk[a] = sk[b];
          si[a] = si[b];
          sk[b] = tk;
          si[b] = ti;
        }
      }
      workgroupBarrier();
    }
  }
  for (var r = lid; r < p.k; r += WG) {
    cand[g * p.k + r] = select(vec2<u32>(0u, NONE), vec2<u32>(sk[r], si[r]), r < n);
  }
}
#endif
