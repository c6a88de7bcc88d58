// add: residual add in place, x[i] += y[i].
// Bindings: 0 x [n] act (read_write), 1 y [n] act (read), 2 params { n }.
// Dispatch: ceil(n / WG) workgroups, spread over x/y by grid(); act = f16 when F16 else f32.
#if F16
alias act = f16;
#else
alias act = f32;
#endif

struct Params { n: u32 }

@group(0) @binding(0) var<storage, read_write> x: array<act>;
@group(0) @binding(1) var<storage, read> y: array<act>;
@group(0) @binding(2) var<uniform> p: Params;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i < p.n) {
    x[i] = x[i] + y[i];
  }
}
