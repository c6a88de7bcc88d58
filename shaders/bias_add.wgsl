// bias_add: in place x[t, n] += b[n] (broadcast over rows), sum in f32.
// Bindings: 0 x [T, N] act (read_write), 1 b [N] (read): f32, or with WEIGHT_F16 f16 pairs
//           packed in u32 [ceil(N / 2)], 2 params { N, total } with total = T * N.
// act = f16 with F16, else f32. Dispatch: ceil(total / WG) workgroups spread over x/y by grid().
#if F16
alias act = f16;
#else
alias act = f32;
#endif

struct Params {
  N: u32,
  total: u32,
}

@group(0) @binding(0) var<storage, read_write> x: array<act>;
#if WEIGHT_F16
@group(0) @binding(1) var<storage, read> b: array<u32>;
#else
@group(0) @binding(1) var<storage, read> b: array<f32>;
#endif
@group(0) @binding(2) var<uniform> p: Params;

override WG: u32 = 256;

fn bAt(n: u32) -> f32 {
#if WEIGHT_F16
  return unpack2x16float(b[n >> 1u])[n & 1u];
#else
  return b[n];
#endif
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i < p.total) {
    x[i] = act(f32(x[i]) + bAt(i % p.N));
  }
}
