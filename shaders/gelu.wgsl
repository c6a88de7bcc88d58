// gelu: exact (erf) GELU in place, x[i] = 0.5 * x * (1 + erf(x / sqrt 2)), computed in f32 as
// x >= 0: x * (1 - erfc(z) / 2), x < 0: x * erfc(z) / 2, z = |x| / sqrt 2, so the negative tail
// keeps its relative accuracy instead of cancelling in 1 + erf. erfc is the Chebyshev fit of
// Numerical Recipes (erfcc, fractional error < 1.2e-7 for all z >= 0 in exact arithmetic).
// Bindings: 0 x [n] act (read_write), 1 params { n }.
// act = f16 with F16, else f32. Dispatch: ceil(n / WG) workgroups spread over x/y by grid().
#if F16
alias act = f16;
#else
alias act = f32;
#endif

struct Params { n: u32 }

@group(0) @binding(0) var<storage, read_write> x: array<act>;
@group(0) @binding(1) var<uniform> p: Params;

override WG: u32 = 256;

// erfc(z) for z >= 0, given z2 = z * z (the caller computes it more exactly than z * z).
fn erfc_pos(z: f32, z2: f32) -> f32 {
  let t = 1.0 / (1.0 + 0.5 * z);
  let poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
             t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  return t * exp(poly - z2);
}

fn gelu(v: f32) -> f32 {
  // z^2 = v^2 / 2 with one rounding; (|v| / sqrt 2)^2 would carry the rounding of z twice into exp.
  let e = erfc_pos(abs(v) * 0.70710678118654752, 0.5 * v * v);
  return select(0.5 * v * e, v * (1.0 - 0.5 * e), v >= 0.0);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i < p.n) {
    x[i] = act(gelu(f32(x[i])));
  }
}
