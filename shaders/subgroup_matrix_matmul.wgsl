// subgroup_matrix_matmul: the prefill product of a quantised weight on the adapter's matrix
// units, through `chromium_experimental_subgroup_matrix` (Vulkan cooperative matrices, Apple
// simdgroup matrices, D3D wave matrices): q4_matmul.wgsl's product (q4g32), or with GGUF
// gguf_matmul.wgsl's (a ggml block format as stored; one format define, gguf_blocks.wgsl appended
// by src/kernels/gguf.ts); the same bindings, params and output as those.
// Y[m, yCol + n] = sum_k X[m, k] W[n, k]. q4: w = (q - 8) * scale[n, k / 32], q = nibble k % 8 of
// u32 word k / 8 of row n, low first; GGUF: w = s * q - m per octet (gguf_blocks.wgsl). X and Y
// are act: f16 with ACT_F16, else f32; the operands are f16 either way (this variant needs
// shader-f16: `enable f16` always), so f32 activations and the dequantised weights are rounded
// to f16 as they are staged (one rounding each, 2^-11 relative).
// Bindings, q4:
//   0 qweight [rows, K/8] u32, read
//   1 scales  [rows, G] f16, read
//   2 x       [M, K/4] vec4<act> (X [M, K] row-major), read
//   3 y       [M, ldy] act, read_write (columns yCol .. yCol + rows written)
//   4 params  { M, K, G, rows, ldy, yCol }
// GGUF:
//   0 wq [(rowBase + rows) * rowBytes / 4] u32, read (the part's rows start at row rowBase)
//   1 x, 2 y as above
//   3 params  { M, K, rows, ldy, yCol, rowBase }
// Tiling: a workgroup is one subgroup, so every subgroup matrix offset derives from the
// workgroup id alone (the extension needs them uniform, and WGSL's uniformity analysis knows no
// uniform per-subgroup index). It computes a T x T tile of Y (T tokens x T weight rows) as 4 x 4
// result fragments of F x F, T = 4F: F = 16 with FRAG16 (T = 64), else 8 (T = 32); the adapter's
// `subgroupMatrixConfigs` say which it has. Per 32 of K it stages the T x 32 slice of X and the
// T x 32 slice of W, dequantised once to f16 (one rounding of the f32 value), in workgroup memory, X row-major (the left operand) and W as [n][k] (the right operand, read
// column-major); fragments multiply-accumulate in f32. Results go out one fragment at a time
// through an f32 staging tile, so the edges (M, rows not multiples of T) are written with
// ordinary bounds checks. Tile rows past M or past `rows` load clamped (valid) data and are never
// written. Workgroup size SG, the adapter's subgroup size.
// Dispatch: (ceil(rows / T), ceil(M / T)) workgroups.
enable chromium_experimental_subgroup_matrix;

#if ACT_F16
alias act = f16;
#else
alias act = f32;
#endif

#if GGUF
struct Params { M: u32, K: u32, rows: u32, ldy: u32, yCol: u32, rowBase: u32 }

@group(0) @binding(0) var<storage, read> wq: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<vec4<act>>;
@group(0) @binding(2) var<storage, read_write> y: array<act>;
@group(0) @binding(3) var<uniform> p: Params;
#else
struct Params { M: u32, K: u32, G: u32, rows: u32, ldy: u32, yCol: u32 }

@group(0) @binding(0) var<storage, read> qweight: array<u32>;
@group(0) @binding(1) var<storage, read> scales: array<f16>;
@group(0) @binding(2) var<storage, read> x: array<vec4<act>>;
@group(0) @binding(3) var<storage, read_write> y: array<act>;
@group(0) @binding(4) var<uniform> p: Params;
#endif

/** Lanes per subgroup (the adapter's subgroup size): the workgroup size. */
override SG: u32 = 32u;

#if FRAG16
const F: u32 = 16u;
alias Left = subgroup_matrix_left<f16, 16, 16>;
alias Right = subgroup_matrix_right<f16, 16, 16>;
alias Result = subgroup_matrix_result<f32, 16, 16>;
#else
const F: u32 = 8u;
alias Left = subgroup_matrix_left<f16, 8, 8>;
alias Right = subgroup_matrix_right<f16, 8, 8>;
alias Result = subgroup_matrix_result<f32, 8, 8>;
#endif
/** Fragments along each side of the tile. */
const FB: u32 = 4u;
const TILE: u32 = FB * F;
const KS: u32 = 32u; // k per step: one q4 quantisation group, four GGUF octets

/** The 8 weights k = 8c .. 8c + 7 of tile row `row` (a weight row of the part), dequantised. */
fn weightOctet(row: u32, c: u32) -> array<f32, 8> {
#if GGUF
  let o = octet((row + p.rowBase) * rowBytesOf(p.K), c);
  let a = o.s * o.a - vec4<f32>(o.m);
  let b = o.s * o.b - vec4<f32>(o.m);
  return array<f32, 8>(a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w);
#else
  let w = qweight[row * (p.K / 8u) + c];
  let s = f32(scales[row * (p.K / 32u) + c / 4u]);
  var out: array<f32, 8>;
  for (var j = 0u; j < 8u; j++) {
    out[j] = (f32((w >> (4u * j)) & 15u) - 8.0) * s;
  }
  return out;
#endif
}

var<workgroup> xs: array<f16, TILE * KS>; // [TILE m][32 k]
var<workgroup> ws: array<f16, TILE * KS>; // [TILE n][32 k]
var<workgroup> staged: array<f32, F * F>;

@compute @workgroup_size(SG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let n0 = wid.x * TILE;
  let m0 = wid.y * TILE;
  var acc: array<Result, FB * FB>;
  for (var g = 0u; g < p.K / KS; g++) {
    // X: TILE rows x 8 vec4 of this group's 32 k.
    for (var i = lid; i < TILE * 8u; i += SG) {
      let r = i / 8u;
      let j = i % 8u;
      let v = x[(min(m0 + r, p.M - 1u) * p.K + g * KS) / 4u + j];
      let o = r * KS + j * 4u;
      xs[o] = f16(v.x);
      xs[o + 1u] = f16(v.y);
      xs[o + 2u] = f16(v.z);
      xs[o + 3u] = f16(v.w);
    }
    // W: TILE rows x 4 octets.
    for (var i = lid; i < TILE * 4u; i += SG) {
      let r = i / 4u;
      let q = i % 4u;
      let v = weightOctet(min(n0 + r, p.rows - 1u), g * 4u + q);
      let o = r * KS + q * 8u;
      for (var j = 0u; j < 8u; j++) {
        ws[o + j] = f16(v[j]);
      }
    }
    workgroupBarrier();
    for (var kk = 0u; kk < KS; kk += F) {
      var left: array<Left, FB>;
      var right: array<Right, FB>;
      for (var a = 0u; a < FB; a++) {
        left[a] = subgroupMatrixLoad<Left, row_major>(&xs, a * F * KS + kk, KS);
        right[a] = subgroupMatrixLoad<Right, col_major>(&ws, a * F * KS + kk, KS);
      }
      for (var a = 0u; a < FB; a++) {
        for (var b = 0u; b < FB; b++) {
          acc[a * FB + b] = subgroupMatrixMultiplyAccumulate(left[a], right[b], acc[a * FB + b]);
        }
      }
    }
    workgroupBarrier();
  }

  for (var a = 0u; a < FB; a++) {
    for (var b = 0u; b < FB; b++) {
      subgroupMatrixStore<row_major>(&staged, 0u, acc[a * FB + b], F);
      workgroupBarrier();
      for (var e = lid; e < F * F; e += SG) {
        let m = m0 + a * F + e / F;
        let n = n0 + b * F + e % F;
        if (m < p.M && n < p.rows) {
          y[m * p.ldy + p.yCol + n] = act(staged[e]);
        }
      }
      workgroupBarrier();
    }
  }
}
