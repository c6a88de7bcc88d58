// attention_combine: split-K pass 2 of decode attention. For each query head, merges the chunks
// written by attention_decode.wgsl: M = max_c m_c, L = sum_c l_c exp(m_c - M),
// out = sum_c o_c exp(m_c - M) / L. All WG threads share the chunks (tree reductions for M and L,
// then (chunk group, vec4 column) threads for the output), so many chunks cost little latency.
// Bindings (vec4 units, head_dim = 4 * d4, d4 <= WG):
//   0 part_o  f32 [n_chunks, n_heads, head_dim] as vec4 (read)
//   1 part_ml f32 [n_chunks, n_heads] vec2 (m, l) (read)
//   2 out     act [n_heads, head_dim] as vec4 (read_write), head h at out_off4 + h * d4
//   3 params
// Dispatch: (n_heads) workgroups.
#if F16
alias act = f16;
#else
alias act = f32;
#endif

struct Params {
  n_chunks: u32,
  n_heads: u32,
  d4: u32,
  out_off4: u32,
}

@group(0) @binding(0) var<storage, read> part_o: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> part_ml: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<act>>;
@group(0) @binding(3) var<uniform> p: Params;

// A power of two.
override WG: u32 = 128;

var<workgroup> red: array<f32, WG>;
var<workgroup> acc: array<vec4<f32>, WG>;

fn tree_max(lid: u32) -> f32 {
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (lid < s) {
      red[lid] = max(red[lid], red[lid + s]);
    }
  }
  return workgroupUniformLoad(&red[0]);
}

fn tree_sum(lid: u32) -> f32 {
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (lid < s) {
      red[lid] = red[lid] + red[lid + s];
    }
  }
  return workgroupUniformLoad(&red[0]);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let h = wid.x;
  var mx = -3.0e38;
  for (var c = lid; c < p.n_chunks; c += WG) {
    mx = max(mx, part_ml[c * p.n_heads + h].x);
  }
  red[lid] = mx;
  let m = tree_max(lid);
  var l = 0.0;
  for (var c = lid; c < p.n_chunks; c += WG) {
    let ml = part_ml[c * p.n_heads + h];
    l += ml.y * exp(ml.x - m);
  }
  workgroupBarrier();
  red[lid] = l;
  let total = tree_sum(lid);
  let inv = select(0.0, 1.0 / total, total > 0.0);

  let d4 = p.d4;
  let e = lid % d4;
  let cg = lid / d4;
  let CG = WG / d4;
  var a = vec4<f32>(0.0);
  if (cg < CG) {
    for (var c = cg; c < p.n_chunks; c += CG) {
      a += exp(part_ml[c * p.n_heads + h].x - m) * part_o[(c * p.n_heads + h) * d4 + e];
    }
  }
  acc[lid] = a;
  workgroupBarrier();
  if (lid < d4) {
    var o = acc[lid];
    for (var r = 1u; r < CG; r++) {
      o += acc[r * d4 + lid];
    }
    out[p.out_off4 + h * d4 + lid] = vec4<act>(o * inv);
  }
}
