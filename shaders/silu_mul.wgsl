// silu_mul: the gated MLP product out[t, i] = silu(gate[t, i]) * up[t, i], silu(g) = g / (1 + e^-g),
// computed in f32. Gate and up are either two tensors [T, I] (ld = I, upOff = 0) or one fused
// [T, 2I] tensor bound twice (ld = 2I, upOff = I: gate = columns 0..I-1, up = I..2I-1).
// Bindings: 0 gate act (read), 1 up act (read), 2 out [T, I] act (read_write),
//           3 params { I, ld, upOff, total } with total = T * I.
// act = f16 with F16, else f32. Dispatch: ceil(total / WG) workgroups spread over x/y by grid().
#if F16
alias act = f16;
#else
alias act = f32;
#endif

struct Params {
  I: u32,
  ld: u32,
  upOff: u32,
  total: u32,
}

@group(0) @binding(0) var<storage, read> gate: array<act>;
@group(0) @binding(1) var<storage, read> up: array<act>;
@group(0) @binding(2) var<storage, read_write> out: array<act>;
@group(0) @binding(3) var<uniform> p: Params;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= p.total) {
    return;
  }
  let t = i / p.I;
  let c = i % p.I;
  let g = f32(gate[t * p.ld + c]);
  let u = f32(up[t * p.ld + p.upOff + c]);
  // e^-g overflows to +inf for g < -88: g / inf = -0, the correct limit.
  out[i] = act(g / (1.0 + exp(-g)) * u);
}
