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
// Tiling: a subgroup computes a T x T tile of Y (T tokens x T weight rows) as 4 x 4 result
// fragments of F x F, T = 4F: F = 16 with FRAG16 (T = 64), else 8 (T = 32); the adapter's
// `subgroupMatrixConfigs` say which it has. A workgroup is one subgroup (every matrix offset then
// derives from the workgroup id: the extension needs them uniform), or with SUBGROUPS4 four, 2 x 2
// over a 2T x 2T tile, each placed by its `subgroup_id` (a WGSL language feature the analysis
// treats as subgroup-uniform): the four share each staged slice, so a weight is dequantised once
// per 2T tokens instead of T. Per 32 of K the workgroup stages its slice of X and of W,
// dequantised once to f16 (one rounding of the f32 value), in workgroup memory, X row-major (the
// left operand) and W as [n][k] (the right operand, read column-major); fragments
// multiply-accumulate in f32. Results go out one fragment at a time through an f32 staging tile
// per subgroup, so the edges (M, rows not multiples of the tile) are written with ordinary bounds
// checks. Tile rows past M or past `rows` load clamped (valid) data and are never written.
// Workgroup size: the subgroups times SG, the adapter's subgroup size.
// Dispatch: (ceil(rows / WT), ceil(M / WT)) workgroups, WT = T, or 2T with SUBGROUPS4.
enable chromium_experimental_subgroup_matrix;
#if SUBGROUPS4
enable subgroups;
#endif

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

/** Lanes per subgroup (the adapter's subgroup size); a workgroup is NSG subgroups. */
override SG: u32 = 32u;

/** Fragments along each side of a subgroup's tile. */
const FB: u32 = 4u;
const TILE: u32 = FB * F;
#if SUBGROUPS4
const SIDE: u32 = 2u; // subgroups along each side of the workgroup's tile
#else
const SIDE: u32 = 1u;
#endif
const NSG: u32 = SIDE * SIDE;
const WT: u32 = SIDE * TILE;
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

var<workgroup> xs: array<f16, WT * KS>; // [WT m][32 k]
var<workgroup> ws: array<f16, WT * KS>; // [WT n][32 k]
var<workgroup> staged: array<f32, NSG * F * F>; // per subgroup

@compute @workgroup_size(NSG * SG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
#if SUBGROUPS4
  @builtin(subgroup_id) sid: u32,
  @builtin(subgroup_invocation_id) lane: u32,
#endif
) {
#if !SUBGROUPS4
  let sid = 0u;
  let lane = lid;
#endif
  let n0 = wid.x * WT;
  let m0 = wid.y * WT;
  // This subgroup's tile: rows bm .. bm + T - 1, columns bn .. bn + T - 1 of the workgroup's.
  let bm = (sid / SIDE) * TILE;
  let bn = (sid % SIDE) * TILE;
  var acc: array<Result, FB * FB>;
  for (var g = 0u; g < p.K / KS; g++) {
    // X: WT rows x 8 vec4 of this step's 32 k.
    for (var i = lid; i < WT * 8u; i += NSG * SG) {
      let r = i / 8u;
      let j = i % 8u;
      let v = x[(min(m0 + r, p.M - 1u) * p.K + g * KS) / 4u + j];
      let o = r * KS + j * 4u;
      xs[o] = f16(v.x);
      xs[o + 1u] = f16(v.y);
      xs[o + 2u] = f16(v.z);
      xs[o + 3u] = f16(v.w);
    }
    // W: WT rows x 4 octets.
    for (var i = lid; i < WT * 4u; i += NSG * SG) {
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
        left[a] = subgroupMatrixLoad<Left, row_major>(&xs, (bm + a * F) * KS + kk, KS);
        right[a] = subgroupMatrixLoad<Right, col_major>(&ws, (bn + a * F) * KS + kk, KS);
      }
      for (var a = 0u; a < FB; a++) {
        for (var b = 0u; b < FB; b++) {
          acc[a * FB + b] = subgroupMatrixMultiplyAccumulate(left[a], right[b], acc[a * FB + b]);
        }
      }
    }
    workgroupBarrier();
  }

  let own = sid * F * F;
  for (var a = 0u; a < FB; a++) {
    for (var b = 0u; b < FB; b++) {
      subgroupMatrixStore<row_major>(&staged, own, acc[a * FB + b], F);
      workgroupBarrier();
      for (var e = lane; e < F * F; e += SG) {
        let m = m0 + bm + a * F + e / F;
        let n = n0 + bn + b * F + e % F;
        if (m < p.M && n < p.rows) {
          y[m * p.ldy + p.yCol + n] = act(staged[own + e]);
        }
      }
      workgroupBarrier();
    }
  }
}
