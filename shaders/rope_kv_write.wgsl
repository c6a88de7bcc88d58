// rope_kv_write: one decode token's packed q|k|v row -> RoPE on its q and k heads in place, and
// the rotated k and the v appended to the KV cache at row pos: rope.wgsl (1D, no llama-4 scale)
// and kv_write.wgsl for k and v in one dispatch, with their exact arithmetic (same table lookups
// and angle addition, same act rounding, the cache's f16 rounding of that act value), so the
// result is bit-identical to rope then kv_write.
// Row layout (elements): q heads [0, n_q * d), k heads [k_off, k_off + n_kv * d),
// v heads [v_off, v_off + n_kv * d); d = 2 * half, half even.
// Threads:
//   idx < (n_q + n_kv) * half / 2: head h, pair index i2: rotates the pairs (2 i2, 2 i2 + half)
//     and (2 i2 + 1, 2 i2 + 1 + half); a k head also stores both rotated pairs in the cache
//     (elements 2 i2, 2 i2 + 1 and their + half partners: whole u32s of a packed f16 cache).
//   next n_kv * half threads: v element pairs (2 j, 2 j + 1) copied to the cache.
// Bindings:
//   0 x    [row] act (read_write): the packed row of this token
//   1 tab  array<vec2<f32>> (cos, sin), the 1D table of rope.wgsl (lo_size rows of p_lo, then p_hi rows)
//   2 kc   cache k [max_ctx, n_kv * d]: act, or f16 pairs as u32 with KV_F16 (read_write)
//   3 vc   cache v, the same
//   4 params
// Dispatch: ceil(((n_q + n_kv) * half / 2 + n_kv * half) / WG) workgroups (x only).
#if F16
alias act = f16;
#else
alias act = f32;
#endif

struct Params {
  n_q: u32,
  n_kv: u32,
  half: u32,
  k_off: u32,
  v_off: u32,
  pos: u32,
  lo_size: u32,
  attn_factor: f32,
}

@group(0) @binding(0) var<storage, read_write> x: array<act>;
@group(0) @binding(1) var<storage, read> tab: array<vec2<f32>>;
#if KV_F16
@group(0) @binding(2) var<storage, read_write> kc: array<u32>;
@group(0) @binding(3) var<storage, read_write> vc: array<u32>;
#else
@group(0) @binding(2) var<storage, read_write> kc: array<act>;
@group(0) @binding(3) var<storage, read_write> vc: array<act>;
#endif
@group(0) @binding(4) var<uniform> p: Params;

override WG: u32 = 256;

// Stores elements e, e + 1 (e even) of a cache row; a and b are already act-rounded.
fn store_k(e: u32, a: act, b: act) {
#if KV_F16
  kc[e / 2u] = pack2x16float(vec2<f32>(f32(a), f32(b)));
#else
  kc[e] = a;
  kc[e + 1u] = b;
#endif
}

fn store_v(e: u32, a: act, b: act) {
#if KV_F16
  vc[e / 2u] = pack2x16float(vec2<f32>(f32(a), f32(b)));
#else
  vc[e] = a;
  vc[e + 1u] = b;
#endif
}

// Rotates the pair (j, j + half) of the row at table entry i, as rope.wgsl; returns the stored values.
fn rotate(j: u32, i: u32) -> vec2<f32> {
  let a = tab[(p.pos % p.lo_size) * p.half + i];
  let b = tab[(p.lo_size + p.pos / p.lo_size) * p.half + i];
  let cs = vec2<f32>(a.x * b.x - a.y * b.y, a.y * b.x + a.x * b.y);
  let c = cs.x * p.attn_factor;
  let s = cs.y * p.attn_factor;
  let x1 = f32(x[j]);
  let x2 = f32(x[j + p.half]);
  let y1 = act((x1 * c - x2 * s) * 1.0);
  let y2 = act((x2 * c + x1 * s) * 1.0);
  x[j] = y1;
  x[j + p.half] = y2;
  return vec2<f32>(f32(y1), f32(y2));
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.x + wid.y * nwg.x) * WG + lid;
  let q2 = p.half / 2u;
  let n_rope = (p.n_q + p.n_kv) * q2;
  let width = p.n_kv * 2u * p.half;
  if (idx < n_rope) {
    let h = idx / q2;
    let i = (idx % q2) * 2u;
    let base = select(h * 2u * p.half, p.k_off + (h - p.n_q) * 2u * p.half, h >= p.n_q);
    let r0 = rotate(base + i, i);
    let r1 = rotate(base + i + 1u, i + 1u);
    if (h >= p.n_q) {
      let e = p.pos * width + (h - p.n_q) * 2u * p.half + i;
      store_k(e, act(r0.x), act(r1.x));
      store_k(e + p.half, act(r0.y), act(r1.y));
    }
    return;
  }
  let j = (idx - n_rope) * 2u;
  if (j < width) {
    store_v(p.pos * width + j, x[p.v_off + j], x[p.v_off + j + 1u]);
  }
}
