// patch_merge: the mistral3 2x2 patch merger gather (torch unfold, kernel = stride = 2), for
// several images whose patches are concatenated row-major in x. Merged token m of an image with
// patch grid h x w sits at (bi, bj) over (h/2, w/2) (an odd last row/column is dropped); its
// output row is CHANNEL-MAJOR: y[m, c*4 + ki*2 + kj] = x[base_m + ki*w_m + kj, c], where
// base_m = first patch of the image + 2bi*w + 2bj. The CPU precomputes (base_m, w_m) per merged
// token (mergeTable in src/kernels/patch-merge.ts), so the shader needs no per-image search.
// Bindings: 0 x [P, D] act (read), 1 tok [M, 2] u32 (base patch, grid width) (read),
//           2 y [M, 4D] act (read_write), 3 params { D, total } with total = M * 4D.
// act = f16 with F16, else f32 (a pure copy: no arithmetic, so bit-exact in either).
// Dispatch: ceil(total / WG) workgroups spread over x/y by grid(); one thread per output value,
// so writes are contiguous and each thread reads one x value.
#if F16
alias act = f16;
#else
alias act = f32;
#endif

struct Params {
  D: u32,
  total: u32,
}

@group(0) @binding(0) var<storage, read> x: array<act>;
@group(0) @binding(1) var<storage, read> tok: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<act>;
@group(0) @binding(3) var<uniform> p: Params;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= p.total) {
    return;
  }
  let row = 4u * p.D;
  let m = i / row;
  let j = i - m * row;
  let c = j >> 2u; // channel
  let k = j & 3u; // ki * 2 + kj
  let base = tok[2u * m];
  let w = tok[2u * m + 1u];
  let src = base + (k >> 1u) * w + (k & 1u);
  y[i] = x[src * p.D + c];
}
