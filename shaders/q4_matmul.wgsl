// q4_matmul: Y[m, yCol + n] = sum_k X[m, k] W[n, k] for the rows n of one row part of a q4g32
// weight (prefill: M tokens at once). Format as in q4_matvec.wgsl / src/quant/q4.ts:
// w = (q - 8) * scale[n, k / 32], q = nibble k % 8 of u32 word k / 8 of row n, low first.
// Bindings:
//   0 qweight [rows, K/8] u32, read
//   1 scales  [rows, G] f16 (F16) | [ceil(rows * G / 2)] u32 holding f16 pairs (f32 path), read
//   2 x       [M, K/4] vec4<act> (X [M, K] row-major), read
//   3 y       [M, ldy] act, read_write (columns yCol .. yCol + rows written)
//   4 params  { M, K, G, rows, ldy, yCol }
// Tiling: a 256-thread workgroup computes a 64 x 64 tile of Y (64 tokens x 64 weight rows),
// stepping over K one quantisation group (32) at a time: the 64 x 32 slice of X and the 64 x 32
// slice of W, dequantised once to f32, are stored k-major in workgroup memory (16 KiB) and each
// thread accumulates a 4 x 4 block (4 tokens x 4 weight rows) with vec4 outer products, so each
// dequantised weight is reused by 64 tokens and each X value by 64 weight rows.
// WIDE (GPUs, large M): a 128 x 128 tile, each thread an 8 x 8 block (two 4-row halves x two
// 4-column halves, 64 apart, so the workgroup-memory reads stay consecutive), stepping over K by
// half a group (16): 2 x 16 x 128 f32 = 16 KiB of workgroup memory, the guaranteed minimum. Per k
// a thread reads 4 vec4 for 16 vec4 FMAs (the 64 tile: 2 for 4).
// Both tiles sum every output over k = 0, 1, ..., K-1 in order with the same multiply-add, so
// they give the same bits (checked in test/kernels/q4-matmul.test.ts).
// Tile rows past M or past `rows` load clamped (valid) data and are never written.
// Dispatch: (ceil(rows / TILE), ceil(M / TILE)) workgroups (TILE 64, or 128 when WIDE); act = f16 when F16 else f32; shared
// tiles and accumulation are f32 either way.
#if F16
alias act = f16;
alias act4 = vec4<f16>;
#else
alias act = f32;
alias act4 = vec4<f32>;
#endif

struct Params { M: u32, K: u32, G: u32, rows: u32, ldy: u32, yCol: u32 }

@group(0) @binding(0) var<storage, read> qweight: array<u32>;
#if F16
@group(0) @binding(1) var<storage, read> scales: array<f16>;
#else
@group(0) @binding(1) var<storage, read> scales: array<u32>;
#endif
@group(0) @binding(2) var<storage, read> x: array<act4>;
@group(0) @binding(3) var<storage, read_write> y: array<act>;
@group(0) @binding(4) var<uniform> p: Params;

#if WIDE
const TILE: u32 = 128u;
// [16 k][128 m] and [16 k][128 n] f32, as vec4 along m / n.
#else
const TILE: u32 = 64u;
// [32 k][64 m] and [32 k][64 n] f32, as vec4 along m / n.
#endif
var<workgroup> xs: array<vec4<f32>, 512>;
var<workgroup> ws: array<vec4<f32>, 512>;

fn scaleAt(i: u32) -> f32 {
#if F16
  return f32(scales[i]);
#else
  let pair = unpack2x16float(scales[i >> 1u]);
  return select(pair.x, pair.y, (i & 1u) == 1u);
#endif
}

#if WIDE
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let n0 = wid.x * TILE;
  let m0 = wid.y * TILE;
  // Compute role: rows m0 + 4 ty (+ 64) .. +3, columns n0 + 4 tx (+ 64) .. +3.
  let tx = lid % 16u;
  let ty = lid / 16u;
  // Load role: tile row lr (a token for X, a weight row for W), k = 8 lq .. 8 lq + 7 of the step.
  let lr = lid / 2u;
  let lq = lid % 2u;
  let xRow = min(m0 + lr, p.M - 1u);
  let wRow = min(n0 + lr, p.rows - 1u);
  let words = p.K / 8u;
  let slot = lr / 4u;
  let lane = lr % 4u;

  var acc: array<vec4<f32>, 16>;
  for (var i = 0u; i < 16u; i++) {
    acc[i] = vec4<f32>(0.0);
  }
  for (var g = 0u; g < p.G; g++) {
    let s = scaleAt(wRow * p.G + g);
    for (var h = 0u; h < 2u; h++) {
      let kb = lq * 8u;
      let xo = (xRow * p.K + g * 32u + h * 16u + kb) / 4u;
      let xa = vec4<f32>(x[xo]);
      let xb = vec4<f32>(x[xo + 1u]);
      let w = qweight[wRow * words + g * 4u + h * 2u + lq];
      for (var j = 0u; j < 4u; j++) {
        xs[(kb + j) * 32u + slot][lane] = xa[j];
        xs[(kb + 4u + j) * 32u + slot][lane] = xb[j];
        ws[(kb + j) * 32u + slot][lane] = (f32((w >> (4u * j)) & 15u) - 8.0) * s;
        ws[(kb + 4u + j) * 32u + slot][lane] = (f32((w >> (4u * j + 16u)) & 15u) - 8.0) * s;
      }
      workgroupBarrier();
      for (var k = 0u; k < 16u; k++) {
        let a0 = xs[k * 32u + ty];
        let a1 = xs[k * 32u + 16u + ty];
        let b0 = ws[k * 32u + tx];
        let b1 = ws[k * 32u + 16u + tx];
        for (var i = 0u; i < 4u; i++) {
          acc[i] += a0[i] * b0;
          acc[4u + i] += a0[i] * b1;
          acc[8u + i] += a1[i] * b0;
          acc[12u + i] += a1[i] * b1;
        }
      }
      workgroupBarrier();
    }
  }

  for (var q = 0u; q < 4u; q++) {
    // q: (row half, column half) = (q / 2, q % 2); acc[4 q + i] holds row i of that block.
    let m = m0 + (q / 2u) * 64u + ty * 4u;
    let n = n0 + (q % 2u) * 64u + tx * 4u;
    for (var i = 0u; i < 4u; i++) {
      if (m + i < p.M) {
        let o = (m + i) * p.ldy + p.yCol + n;
        for (var j = 0u; j < 4u; j++) {
          if (n + j < p.rows) { y[o + j] = act(acc[4u * q + i][j]); }
        }
      }
    }
  }
}
#else
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let n0 = wid.x * TILE;
  let m0 = wid.y * TILE;
  // Compute role: rows m0 + 4 ty .. +3, columns n0 + 4 tx .. +3.
  let tx = lid % 16u;
  let ty = lid / 16u;
  // Load role: tile row lr (a token for X, a weight row for W), k = 8 lq .. 8 lq + 7 of the group.
  let lr = lid / 4u;
  let lq = lid % 4u;
  let xRow = min(m0 + lr, p.M - 1u);
  let wRow = min(n0 + lr, p.rows - 1u);
  let words = p.K / 8u;
  let slot = lr / 4u;
  let lane = lr % 4u;

  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  for (var g = 0u; g < p.G; g++) {
    let kb = lq * 8u;
    let xo = (xRow * p.K + g * 32u + kb) / 4u;
    let xa = vec4<f32>(x[xo]);
    let xb = vec4<f32>(x[xo + 1u]);
    let w = qweight[wRow * words + g * 4u + lq];
    let s = scaleAt(wRow * p.G + g);
    for (var j = 0u; j < 4u; j++) {
      xs[(kb + j) * 16u + slot][lane] = xa[j];
      xs[(kb + 4u + j) * 16u + slot][lane] = xb[j];
      ws[(kb + j) * 16u + slot][lane] = (f32((w >> (4u * j)) & 15u) - 8.0) * s;
      ws[(kb + 4u + j) * 16u + slot][lane] = (f32((w >> (4u * j + 16u)) & 15u) - 8.0) * s;
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
#endif
