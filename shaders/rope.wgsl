// rope: rotary position embedding in place, Hugging Face rotate-half layout: for each head,
// pair (i, i + d/2), i < d/2:  y_i = x_i c - x_{i+d/2} s,  y_{i+d/2} = x_{i+d/2} c + x_i s,
// with (c, s) = attn_factor * (cos a, sin a), then (1D only) y *= 1 + beta ln(1 + floor(pos/orig)).
// No sin/cos is evaluated here: every (cos, sin) comes from a table built on the CPU in float64
// (src/kernels/rope.ts), so the angle never exists as a rounded f32 (pos 131071 * inv_freq would
// be ~1e5 rad with an f32 ulp of 0.008 rad) and WGSL's loose sin/cos accuracy does not matter.
//
// Bindings:
//   0 x    [n_tok, row_stride] act (read_write): head h of token t starts at
//          offset + t * row_stride + h * 2 * half (q, k, or a head range of a fused qkv row)
//   1 tab  array<vec2<f32>> (cos, sin), read:
//          1D (!VISION): rows [0, lo_size) = angle(p_lo), rows [lo_size, ...) = angle(p_hi * lo_size),
//          each row `half` entries; pos = p_hi * lo_size + p_lo, combined by angle addition.
//          VISION: [grid, half]: entry [r][i] = angle(r * f_i), f_i = freqs[2i] (i < half/2, used
//          with the patch row) or freqs[2(i - half/2) + 1] (used with the patch column).
//   2 pos  [n_tok] u32 (read): 1D: absolute position when use_pos != 0 (else pos0 + t is used and
//          this binding is ignored); VISION: (row << 16) | col of the patch.
//   3 params.
// Dispatch: ceil(n_tok * n_heads * half / WG) workgroups spread over x/y by grid().
#if F16
alias act = f16;
#else
alias act = f32;
#endif

struct Params {
  n_tok: u32,
  n_heads: u32,
  half: u32,
  row_stride: u32,
  offset: u32,
  pos0: u32,
  use_pos: u32,
  lo_size: u32,
  attn_factor: f32,
  beta: f32,
  orig: u32,
}

@group(0) @binding(0) var<storage, read_write> x: array<act>;
@group(0) @binding(1) var<storage, read> tab: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> pos: array<u32>;
@group(0) @binding(3) var<uniform> p: Params;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.x + wid.y * nwg.x) * WG + lid;
  if (idx >= p.n_tok * p.n_heads * p.half) {
    return;
  }
  let i = idx % p.half;
  let th = idx / p.half;
  let h = th % p.n_heads;
  let t = th / p.n_heads;
#if VISION
  let rc = pos[t];
  let r = select(rc & 0xffffu, rc >> 16u, i < p.half / 2u);
  let cs = tab[r * p.half + i];
  let scale = 1.0;
#else
  var ap = p.pos0 + t;
  if (p.use_pos != 0u) {
    ap = pos[t];
  }
  let a = tab[(ap % p.lo_size) * p.half + i];
  let b = tab[(p.lo_size + ap / p.lo_size) * p.half + i];
  let cs = vec2<f32>(a.x * b.x - a.y * b.y, a.y * b.x + a.x * b.y);
  var scale = 1.0;
  if (p.beta != 0.0) {
    scale = 1.0 + p.beta * log(1.0 + f32(ap / p.orig));
  }
#endif
  let c = cs.x * p.attn_factor;
  let s = cs.y * p.attn_factor;
  let j = p.offset + t * p.row_stride + h * 2u * p.half + i;
  let x1 = f32(x[j]);
  let x2 = f32(x[j + p.half]);
  x[j] = act((x1 * c - x2 * s) * scale);
  x[j + p.half] = act((x2 * c + x1 * s) * scale);
}
