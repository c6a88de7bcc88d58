// im2col: patch rows for a stride == kernel convolution (the ViT patch embedding), so the conv
// becomes matmul(patches, W_conv viewed as [hidden, C * p * p]).
// out[r * cols + c, ch * p * p + ky * p + kx] = img[ch, r * p + ky, c * p + kx]
// (patches row-major over the grid; columns in PyTorch conv weight order (ch, ky, kx)).
// Bindings: 0 img [C, H, W] act (read), 1 out [rows * cols, C * p * p] act (read_write),
//           2 params { C, H, W, p, cols, total } with cols = W / p, total = rows * cols * C * p * p.
// Dispatch: ceil(total / WG) workgroups spread over x/y by grid(); one thread per output element.
#if F16
alias act = f16;
#else
alias act = f32;
#endif

struct Params {
  C: u32,
  H: u32,
  W: u32,
  p: u32,
  cols: u32,
  total: u32,
}

@group(0) @binding(0) var<storage, read> img: array<act>;
@group(0) @binding(1) var<storage, read_write> out: array<act>;
@group(0) @binding(2) var<uniform> prm: Params;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= prm.total) {
    return;
  }
  let pp = prm.p * prm.p;
  let rowLen = prm.C * pp;
  let pi = i / rowLen;
  let j = i % rowLen;
  let ch = j / pp;
  let ky = (j % pp) / prm.p;
  let kx = j % prm.p;
  let py = pi / prm.cols;
  let px = pi % prm.cols;
  out[i] = img[(ch * prm.H + py * prm.p + ky) * prm.W + px * prm.p + kx];
}
