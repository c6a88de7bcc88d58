// attention_combine: split-K pass 2 of decode attention. For each query head, merges the chunks
// written by attention_decode.wgsl: M = max_c m_c, L = sum_c l_c exp(m_c - M),
// out = sum_c o_c exp(m_c - M) / L.
// Bindings (vec4 units, head_dim = 4 * d4):
//   0 part_o  f32 [n_chunks, n_heads, head_dim] as vec4 (read)
//   1 part_ml f32 [n_chunks, n_heads] vec2 (m, l) (read)
//   2 out     act [n_heads, head_dim] as vec4 (read_write), head h at out_off4 + h * d4
//   3 params
// Dispatch: (n_heads) workgroups; thread e handles vec4 e of head_dim (loop when d4 > WG).
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

override WG: u32 = 32;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let h = wid.x;
  var mx = -3.0e38;
  for (var c = 0u; c < p.n_chunks; c++) {
    mx = max(mx, part_ml[c * p.n_heads + h].x);
  }
  var l = 0.0;
  for (var c = 0u; c < p.n_chunks; c++) {
    let ml = part_ml[c * p.n_heads + h];
    l += ml.y * exp(ml.x - mx);
  }
  let inv = select(0.0, 1.0 / l, l > 0.0);
  for (var e = lid; e < p.d4; e += WG) {
    var acc = vec4<f32>(0.0);
    for (var c = 0u; c < p.n_chunks; c++) {
      let w = exp(part_ml[c * p.n_heads + h].x - mx);
      acc += w * part_o[(c * p.n_heads + h) * p.d4 + e];
    }
    out[p.out_off4 + h * p.d4 + e] = vec4<act>(acc * inv);
  }
}
