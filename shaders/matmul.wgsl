// matmul: Y[m, colOffset + n] = sum_k X[m, k] * W[n, k] (+ bias[colOffset + n]), i.e. Y = X @ W^T
// with W in PyTorch Linear layout [out, in]. One dispatch per row part of W (see splitRows):
// the part holds output columns colOffset .. colOffset + N - 1.
// Bindings: 0 x [M, K] act (read)
//           1 w [N, K] wt (read): f32, or with WEIGHT_F16 f16 pairs packed in u32 [ceil(N*K/2)]
//           2 y [M, ldy] act (read_write)
//           3 bias [ldy] (read), only with HAS_BIAS: f32, or with BIAS_F16 f16 packed in u32
//           then params { M, N, K, ldy, colOffset }.
// act = f16 with F16 (needs shader-f16), else f32. Accumulation is always f32.
// VEC4 (set when K % 4 == 0): x and w are read four depths at a time (vec4 / two packed u32).
// Dispatch: (ceil(N / 64), ceil(M / 64)) workgroups of 16 x 8 threads; each thread computes an
// 8 x 4 block (rows x cols) of the 64 x 64 output tile, K is walked in steps of BK through
// workgroup memory.
// Every load and store is bounds-checked, so M, N, K need not be multiples of anything.
#if F16
alias act = f16;
#else
alias act = f32;
#endif

struct Params {
  M: u32,
  N: u32,
  K: u32,
  ldy: u32,
  colOffset: u32,
}

#if VEC4
@group(0) @binding(0) var<storage, read> x: array<vec4<act>>;
#else
@group(0) @binding(0) var<storage, read> x: array<act>;
#endif
#if VEC4 && WEIGHT_F16
@group(0) @binding(1) var<storage, read> w: array<vec2<u32>>;
#elif VEC4
@group(0) @binding(1) var<storage, read> w: array<vec4<f32>>;
#elif WEIGHT_F16
@group(0) @binding(1) var<storage, read> w: array<u32>;
#else
@group(0) @binding(1) var<storage, read> w: array<f32>;
#endif
@group(0) @binding(2) var<storage, read_write> y: array<act>;
#if HAS_BIAS && BIAS_F16
@group(0) @binding(3) var<storage, read> bias: array<u32>;
#elif HAS_BIAS
@group(0) @binding(3) var<storage, read> bias: array<f32>;
#endif
#if HAS_BIAS
@group(0) @binding(4) var<uniform> p: Params;
#else
@group(0) @binding(3) var<uniform> p: Params;
#endif

// Tile geometry (not shapes): 16 x 8 threads, 8 x 4 outputs each, K step BK.
const TS: u32 = 64u;   // output tile side
const TV: u32 = 16u;   // TS / 4: vec4 columns per tile row
const BK: u32 = 16u;

// xs[k * TV + i] holds X rows 4i..4i+3 of the tile at depth k; ws likewise for W rows (= Y cols).
var<workgroup> xs: array<vec4<f32>, 256>; // [BK, TS] f32 (BK * TV vec4)
var<workgroup> ws: array<vec4<f32>, 256>; // [BK, TS] f32

#if VEC4
// X elements 4i .. 4i + 3 and weight elements 4i .. 4i + 3 (flat index into this part), as f32.
fn x4At(i: u32) -> vec4<f32> {
  return vec4<f32>(x[i]);
}
fn w4At(i: u32) -> vec4<f32> {
#if WEIGHT_F16
  let u = w[i];
  return vec4<f32>(unpack2x16float(u.x), unpack2x16float(u.y));
#else
  return w[i];
#endif
}
#else
// X element i and weight element i (flat index into this part), as f32.
fn xAt(i: u32) -> f32 {
  return f32(x[i]);
}
fn wAt(i: u32) -> f32 {
#if WEIGHT_F16
  return unpack2x16float(w[i >> 1u])[i & 1u];
#else
  return w[i];
#endif
}
#endif

fn biasAt(n: u32) -> f32 {
#if HAS_BIAS && BIAS_F16
  return unpack2x16float(bias[n >> 1u])[n & 1u];
#elif HAS_BIAS
  return bias[n];
#else
  return 0.0;
#endif
}

// Y[m, colOffset + n .. n + 3] = v, the parts inside M x N.
fn storeRow(m: u32, n: u32, v: vec4<f32>) {
  if (m < p.M) {
    for (var j = 0u; j < 4u; j++) {
      if (n + j < p.N) {
        y[m * p.ldy + p.colOffset + n + j] = act(v[j]);
      }
    }
  }
}

@compute @workgroup_size(16, 8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let m0 = wid.y * TS;
  let n0 = wid.x * TS;
  // Loader role: thread li loads tile row lr (0..63), depths lk .. lk + 7 of X and of W.
  let lr = li >> 1u;
  let lk = (li & 1u) * 8u;
  let xm = m0 + lr;
  let wn = n0 + lr;

  // Rows lid.y * 8 + 0..7, columns lid.x * 4 + 0..3 (separate variables: stay in registers).
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  var acc4 = vec4<f32>(0.0);
  var acc5 = vec4<f32>(0.0);
  var acc6 = vec4<f32>(0.0);
  var acc7 = vec4<f32>(0.0);

  for (var k0 = 0u; k0 < p.K; k0 += BK) {
    for (var h = 0u; h < 8u; h += 4u) {
      var xv = vec4<f32>(0.0);
      var wv = vec4<f32>(0.0);
#if VEC4
      // K % 4 == 0: the four depths are all inside K or all outside.
      let k = k0 + lk + h;
      if (xm < p.M && k < p.K) {
        xv = x4At((xm * p.K + k) >> 2u);
      }
      if (wn < p.N && k < p.K) {
        wv = w4At((wn * p.K + k) >> 2u);
      }
#else
      for (var j = 0u; j < 4u; j++) {
        let k = k0 + lk + h + j;
        if (xm < p.M && k < p.K) {
          xv[j] = xAt(xm * p.K + k);
        }
        if (wn < p.N && k < p.K) {
          wv[j] = wAt(wn * p.K + k);
        }
      }
#endif
      for (var j = 0u; j < 4u; j++) {
        xs[(lk + h + j) * TV + (lr >> 2u)][lr & 3u] = xv[j];
        ws[(lk + h + j) * TV + (lr >> 2u)][lr & 3u] = wv[j];
      }
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      let a0 = xs[kk * TV + lid.y * 2u];
      let a1 = xs[kk * TV + lid.y * 2u + 1u];
      let b = ws[kk * TV + lid.x];
      acc0 += a0.x * b;
      acc1 += a0.y * b;
      acc2 += a0.z * b;
      acc3 += a0.w * b;
      acc4 += a1.x * b;
      acc5 += a1.y * b;
      acc6 += a1.z * b;
      acc7 += a1.w * b;
    }
    workgroupBarrier();
  }

  let col = n0 + lid.x * 4u;
  var bv = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) {
    if (col + j < p.N) {
      bv[j] = biasAt(p.colOffset + col + j);
    }
  }
  let row = m0 + lid.y * 8u;
  storeRow(row, col, acc0 + bv);
  storeRow(row + 1u, col, acc1 + bv);
  storeRow(row + 2u, col, acc2 + bv);
  storeRow(row + 3u, col, acc3 + bv);
  storeRow(row + 4u, col, acc4 + bv);
  storeRow(row + 5u, col, acc5 + bv);
  storeRow(row + 6u, col, acc6 + bv);
  storeRow(row + 7u, col, acc7 + bv);
}
