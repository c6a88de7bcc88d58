// gguf_matmul: Y[m, yCol + n] = sum_k X[m, k] W[n, k] for the rows n of one row part of a weight
// held in a ggml block format as stored in the GGUF (prefill: M tokens at once). The format is
// one define (W_Q4_K, ...; gguf_blocks.wgsl, appended to this file, reads the blocks).
// Bindings:
//   0 wq [(rowBase + rows) * rowBytes / 4] u32 (rowBytes = K / QK * BB, padded to 4), read: the
//     part's rows start at row rowBase (a buffer shared by adjacent weights, gguf_matvec.wgsl)
//   1 x  [M, K/4] vec4<act> (X [M, K] row-major), read
//   2 y  [M, ldy] act, read_write (columns yCol .. yCol + rows written)
//   3 params { M, K, rows, ldy, yCol, rowBase }
// Tiling (as q4_matmul.wgsl): a 256-thread workgroup computes a 64 x 64 tile of Y, stepping over
// K 32 at a time: each thread loads one octet of X and one octet of W (dequantised once to f32,
// s * q - m), stored k-major in workgroup memory (16 KiB), and accumulates a 4 x 4 block with
// vec4 outer products. Tile rows past M or past `rows` load clamped (valid) data and are never
// written. Dispatch: (ceil(rows / 64), ceil(M / 64)); act = f16 when F16 else f32; shared tiles
// and accumulation are f32 either way. K is a multiple of 32 (and of the format's block).
#if F16
alias act = f16;
alias act4 = vec4<f16>;
#else
alias act = f32;
alias act4 = vec4<f32>;
#endif

struct Params { M: u32, K: u32, rows: u32, ldy: u32, yCol: u32, rowBase: u32 }

@group(0) @binding(0) var<storage, read> wq: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<act4>;
@group(0) @binding(2) var<storage, read_write> y: array<act>;
@group(0) @binding(3) var<uniform> p: Params;

const TILE: u32 = 64u;
// [32 k][64 m] and [32 k][64 n] f32, as vec4 along m / n.
var<workgroup> xs: array<vec4<f32>, 512>;
var<workgroup> ws: array<vec4<f32>, 512>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let n0 = wid.x * TILE;
  let m0 = wid.y * TILE;
  // Compute role: rows m0 + 4 ty .. +3, columns n0 + 4 tx .. +3.
  let tx = lid % 16u;
  let ty = lid / 16u;
  // Load role: tile row lr (a token for X, a weight row for W), octet lq of the 32-slice.
  let lr = lid / 4u;
  let lq = lid % 4u;
  let xRow = min(m0 + lr, p.M - 1u);
  let wBase = (min(n0 + lr, p.rows - 1u) + p.rowBase) * rowBytesOf(p.K);
  let slot = lr / 4u;
  let lane = lr % 4u;

  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  for (var g = 0u; g < p.K / 32u; g++) {
    let kb = lq * 8u;
    let xo = (xRow * p.K + g * 32u + kb) / 4u;
    let xa = vec4<f32>(x[xo]);
    let xb = vec4<f32>(x[xo + 1u]);
    let o = octet(wBase, g * 4u + lq);
    let wa = o.s * o.a - vec4<f32>(o.m);
    let wb = o.s * o.b - vec4<f32>(o.m);
    for (var j = 0u; j < 4u; j++) {
      xs[(kb + j) * 16u + slot][lane] = xa[j];
      xs[(kb + 4u + j) * 16u + slot][lane] = xb[j];
      ws[(kb + j) * 16u + slot][lane] = wa[j];
      ws[(kb + 4u + j) * 16u + slot][lane] = wb[j];
    }
    workgroupBarrier();
    for (var k = 0u; k < 32u; k++) {
      let a = xs[k * 16u + ty];
      let b = ws[k * 16u + tx];
      acc0 += a.x * b;
      acc1 += a.y * b;
      acc2 += a.z * b;
      acc3 += a.w * b;
    }
    workgroupBarrier();
  }

  let n = n0 + tx * 4u;
  let m = m0 + ty * 4u;
  var accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
  for (var i = 0u; i < 4u; i++) {
    if (m + i < p.M) {
      let o = (m + i) * p.ldy + p.yCol + n;
      for (var j = 0u; j < 4u; j++) {
        if (n + j < p.rows) { y[o + j] = act(accs[i][j]); }
      }
    }
  }
}
