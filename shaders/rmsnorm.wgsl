// rmsnorm: y[r, c] = x[r, c] / sqrt(mean_c(x[r, :]^2) + eps) * w[c], statistics in f32.
// Bindings: 0 x [rows, cols] act (read), 1 w [cols] (read): f32, or with WEIGHT_F16 f16 pairs
//           packed in u32 [ceil(cols / 2)], 2 y [rows, cols] act (read_write),
//           3 params { rows, cols, eps }.
// act = f16 with F16, else f32. Dispatch: one workgroup of WG threads per row, rows spread over
// x/y by grid(); sum of squares by a workgroup tree reduction.
#if F16
alias act = f16;
#else
alias act = f32;
#endif

struct Params {
  rows: u32,
  cols: u32,
  eps: f32,
}

@group(0) @binding(0) var<storage, read> x: array<act>;
#if WEIGHT_F16
@group(0) @binding(1) var<storage, read> w: array<u32>;
#else
@group(0) @binding(1) var<storage, read> w: array<f32>;
#endif
@group(0) @binding(2) var<storage, read_write> y: array<act>;
@group(0) @binding(3) var<uniform> p: Params;

override WG: u32 = 256; // a power of two

var<workgroup> red: array<f32, WG>;

fn wAt(c: u32) -> f32 {
#if WEIGHT_F16
  return unpack2x16float(w[c >> 1u])[c & 1u];
#else
  return w[c];
#endif
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  // Uniform control flow: every thread of the workgroup shares `row`, so all return together.
  if (row >= p.rows) {
    return;
  }
  let base = row * p.cols;
  var s = 0.0;
  for (var c = lid; c < p.cols; c += WG) {
    let v = f32(x[base + c]);
    s += v * v;
  }
  red[lid] = s;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half >>= 1u) {
    if (lid < half) {
      red[lid] += red[lid + half];
    }
    workgroupBarrier();
  }
  let inv = 1.0 / sqrt(red[0] / f32(p.cols) + p.eps);
  for (var c = lid; c < p.cols; c += WG) {
    y[base + c] = act(f32(x[base + c]) * inv * wAt(c));
  }
}
