#if SUBGROUPS
enable subgroups;
#endif
// q4_matvec: y[yOffset + r] = sum_k W[r, k] x[k] for the rows r of one row part of a q4g32
// weight (decode, batch 1). Format (src/quant/q4.ts): element k of row r is nibble k % 8 of u32
// word k / 8, low nibble first; w = (q - 8) * scale[r, k / 32]. One group of 32 weights is
// exactly one vec4<u32>, so the kernel walks the weights in whole groups.
// Variants (decode fusions, at most one set; each saves dispatches and the barriers between):
//   plain:   y[yOffset + r] = (W x)[r].
//   GATE_UP: two weights of the same shape (gate = W, up = W1): y[yOffset + r] =
//            silu((W x)[r]) * (W1 x)[r], silu(g) = g / (1 + e^-g) in f32, the formula of
//            silu_mul.wgsl (so the result equals matvec, matvec, silu_mul exactly in f32).
//   QKV:     three weights with the same K (W [rows0, K], W1 [rows1, K], W2 [rows2, K]) in one
//            dispatch: y[yOff0 + r] = (W x)[r], y[yOff1 + r] = (W1 x)[r], y[yOff2 + r] = (W2 x)[r].
//            The first wgs0 workgroups do W, the next wgs1 W1, the rest W2 (a workgroup never
//            straddles two weights, so the weight is uniform per workgroup).
//   NORM (plain, GATE_UP or QKV; not with RESIDUAL): x is the residual stream and the RMSNorm
//            that feeds the projections is folded in (matvec_common.wgsl).
//   RESIDUAL (plain only): y[yOffset + r] = y[yOffset + r] + act((W x)[r]): the residual add of
//            the o- and down-projections as the epilogue (matvec_common.wgsl).
// x reads, the block reduction and the epilogue are matvec_common.wgsl's (appended to this file).
// Bindings:
//   0 qweight [rows, G] vec4<u32> (= u32 [rows, K/8]), read; G = K / 32
//   1 scales  [rows, G] f16 (F16) | [ceil(rows * G / 2)] u32 holding f16 pairs (f32 path), read
//   2 x       [K / 4] vec4<act>, read
//   3 y       [>= yOffset + rows] act, read_write (only rows of this part are written); QKV:
//             [>= max(yOff_m + rows_m)]
//   4 qweight1, 5 scales1 (GATE_UP, QKV): the second weight, same layout
//   6 qweight2, 7 scales2 (QKV): the third weight
//   NORM: next, nw [K] the norm weight: f32, or with NORM_F16 f16 pairs packed in u32 [K / 2]
//   last: params { K, G, rows, yOffset } | QKV: { K, G, rows0, rows1, rows2, wgs0, wgs1, yOff0,
//         yOff1, yOff2 }; NORM appends eps (f32)
// Work split: a thread owns 4 consecutive rows (one vec4<f32> accumulator, so each x load
// is reused 4 times) and strides over the groups g = t, t + TPR, ... of those rows; with PAIRS,
// two groups per loop iteration (8 weight loads issued before the math that uses them: more
// bytes in flight on GPUs; CPU JITs spill instead); nibbles become floats by a bit trick (GPUs)
// or a signed conversion (INTCVT, CPUs), see dot8. TPR threads
// share a 4-row block; a workgroup of WG threads holds WG / TPR blocks = 4 * WG / TPR rows.
// GATE_UP walks the gate rows, then the same rows of up (two accumulators; each sum is formed
// exactly as in the plain variant).
// TPR = 1 (CPU-like adapters: a thread streams whole rows, no reduction) or a power of two >= 4
// (GPUs: TPR threads read consecutive 16-byte groups of a row, then a workgroup reduction:
// subgroupAdd + shared memory when SUBGROUPS, which needs subgroups of consecutive
// invocations no wider than TPR; shared memory alone otherwise).
// Dispatch: ceil(rows / (4 * WG / TPR)) workgroups (QKV: wgs0 + wgs1 + wgs2, wgs_m =
// ceil(rows_m / (4 * WG / TPR))) spread over x/y by grid(); act = f16 when F16 else f32;
// accumulation is f32 either way.
#if F16
alias act = f16;
alias act4 = vec4<f16>;
#else
alias act = f32;
alias act4 = vec4<f32>;
#endif

#if QKV && NORM
struct Params { K: u32, G: u32, rows0: u32, rows1: u32, rows2: u32, wgs0: u32, wgs1: u32, yOff0: u32, yOff1: u32, yOff2: u32, eps: f32 }
#elif QKV
struct Params { K: u32, G: u32, rows0: u32, rows1: u32, rows2: u32, wgs0: u32, wgs1: u32, yOff0: u32, yOff1: u32, yOff2: u32 }
#elif NORM
struct Params { K: u32, G: u32, rows: u32, yOffset: u32, eps: f32 }
#else
struct Params { K: u32, G: u32, rows: u32, yOffset: u32 }
#endif

@group(0) @binding(0) var<storage, read> qweight: array<vec4<u32>>;
#if F16
@group(0) @binding(1) var<storage, read> scales: array<f16>;
#else
@group(0) @binding(1) var<storage, read> scales: array<u32>;
#endif
@group(0) @binding(2) var<storage, read> x: array<act4>;
@group(0) @binding(3) var<storage, read_write> y: array<act>;
#if GATE_UP || QKV
@group(0) @binding(4) var<storage, read> qweight1: array<vec4<u32>>;
#if F16
@group(0) @binding(5) var<storage, read> scales1: array<f16>;
#else
@group(0) @binding(5) var<storage, read> scales1: array<u32>;
#endif
#endif
#if QKV
@group(0) @binding(6) var<storage, read> qweight2: array<vec4<u32>>;
#if F16
@group(0) @binding(7) var<storage, read> scales2: array<f16>;
#else
@group(0) @binding(7) var<storage, read> scales2: array<u32>;
#endif
#if NORM && NORM_F16
@group(0) @binding(8) var<storage, read> nw: array<u32>;
#elif NORM
@group(0) @binding(8) var<storage, read> nw: array<f32>;
#endif
#if NORM
@group(0) @binding(9) var<uniform> p: Params;
#else
@group(0) @binding(8) var<uniform> p: Params;
#endif
#elif GATE_UP
#if NORM && NORM_F16
@group(0) @binding(6) var<storage, read> nw: array<u32>;
#elif NORM
@group(0) @binding(6) var<storage, read> nw: array<f32>;
#endif
#if NORM
@group(0) @binding(7) var<uniform> p: Params;
#else
@group(0) @binding(6) var<uniform> p: Params;
#endif
#else
#if NORM && NORM_F16
@group(0) @binding(4) var<storage, read> nw: array<u32>;
#elif NORM
@group(0) @binding(4) var<storage, read> nw: array<f32>;
#endif
#if NORM
@group(0) @binding(5) var<uniform> p: Params;
#else
@group(0) @binding(4) var<uniform> p: Params;
#endif
#endif

override WG: u32 = 256;
override TPR: u32 = 64;
override PAIRS: bool = true;
override INTCVT: bool = false;

// Group i (row-major [rows, G]) of weight m (0: qweight, 1: qweight1, 2: qweight2). m is a
// constant or uniform per workgroup at every call site.
fn wAt(m: u32, i: u32) -> vec4<u32> {
#if GATE_UP || QKV
  if (m == 1u) { return qweight1[i]; }
#endif
#if QKV
  if (m == 2u) { return qweight2[i]; }
#endif
  return qweight[i];
}

#if F16
fn scaleRaw(m: u32, i: u32) -> f16 {
#if GATE_UP || QKV
  if (m == 1u) { return scales1[i]; }
#endif
#if QKV
  if (m == 2u) { return scales2[i]; }
#endif
  return scales[i];
}
#else
fn scaleRaw(m: u32, i: u32) -> u32 {
#if GATE_UP || QKV
  if (m == 1u) { return scales1[i]; }
#endif
#if QKV
  if (m == 2u) { return scales2[i]; }
#endif
  return scales[i];
}
#endif

// Scale number i of weight m (row-major [rows, G]).
fn scaleAt(m: u32, i: u32) -> f32 {
#if F16
  return f32(scaleRaw(m, i));
#else
  let pair = unpack2x16float(scaleRaw(m, i >> 1u));
  return select(pair.x, pair.y, (i & 1u) == 1u);
#endif
}

// Nibble j of a word, masked in place (not shifted), is q_j * 16^j < 2^23 (j < 4). OR-ed into the
// bits of 2^23 it is the float 2^23 + q_j 16^j exactly, and subtracting 2^23 + 8 * 16^j leaves
// (q_j - 8) 16^j exactly: no int->float conversion (quarter rate on GPUs) and the -8 for free.
// The 16^-j goes into x once per group (XS), so a nibble costs one and-or, one subtract and one
// multiply-add.
const MASK = vec4<u32>(0xfu, 0xf0u, 0xf00u, 0xf000u);
const MAGIC = vec4<u32>(0x4b000000u); // bits of 2^23
const BIAS = vec4<f32>(8388616.0, 8388736.0, 8390656.0, 8421376.0); // 2^23 + 8 * 16^j
const XS = vec4<f32>(1.0, 1.0 / 16.0, 1.0 / 256.0, 1.0 / 4096.0);

// sum_j (q_j - 8) * x_j over the 8 nibbles q_j of w (low first), x = (xa, xb) * XS; with
// INTCVT (CPUs, where signed int->float is one instruction) sum_j q_j * x_j instead: the masked
// nibble q_j 16^j is a positive i32, and the caller subtracts 8 sum x once per group for 4 rows.
fn dot8(w: u32, xa: vec4<f32>, xb: vec4<f32>) -> f32 {
  var lo: vec4<f32>;
  var hi: vec4<f32>;
  if (INTCVT) {
    lo = vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(w) & MASK));
    hi = vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(w >> 16u) & MASK));
  } else {
    lo = bitcast<vec4<f32>>((vec4<u32>(w) & MASK) | MAGIC) - BIAS;
    hi = bitcast<vec4<f32>>((vec4<u32>(w >> 16u) & MASK) | MAGIC) - BIAS;
  }
  return dot(lo, xa) + dot(hi, xb);
}

// sum over one group (a vec4<u32> of 32 nibbles) of (q - 8) * x (q * x with INTCVT), x pre-scaled
// by XS.
fn dot32(w: vec4<u32>, x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>,
         x4: vec4<f32>, x5: vec4<f32>, x6: vec4<f32>, x7: vec4<f32>) -> f32 {
  return (dot8(w.x, x0, x1) + dot8(w.y, x2, x3)) + (dot8(w.z, x4, x5) + dot8(w.w, x6, x7));
}

// Group g of the thread's 4 rows (weights w0..w3, scales sc) times x: one vec4 lane per row.
fn groupDot(g: u32, w0: vec4<u32>, w1: vec4<u32>, w2: vec4<u32>, w3: vec4<u32>, sc: vec4<f32>) -> vec4<f32> {
  let xo = g * 8u;
  let x0 = xAt(xo);
  let x1 = xAt(xo + 1u);
  let x2 = xAt(xo + 2u);
  let x3 = xAt(xo + 3u);
  let x4 = xAt(xo + 4u);
  let x5 = xAt(xo + 5u);
  let x6 = xAt(xo + 6u);
  let x7 = xAt(xo + 7u);
  let s0 = x0 * XS;
  let s1 = x1 * XS;
  let s2 = x2 * XS;
  let s3 = x3 * XS;
  let s4 = x4 * XS;
  let s5 = x5 * XS;
  let s6 = x6 * XS;
  let s7 = x7 * XS;
  var d = vec4<f32>(
    dot32(w0, s0, s1, s2, s3, s4, s5, s6, s7),
    dot32(w1, s0, s1, s2, s3, s4, s5, s6, s7),
    dot32(w2, s0, s1, s2, s3, s4, s5, s6, s7),
    dot32(w3, s0, s1, s2, s3, s4, s5, s6, s7));
  if (INTCVT) {
    // sum (q - 8) x = sum q x - 8 sum x.
    d -= vec4<f32>(8.0 * dot((x0 + x1) + (x2 + x3) + ((x4 + x5) + (x6 + x7)), vec4<f32>(1.0)));
  }
  return sc * d;
}

fn scales4(m: u32, b: vec4<u32>) -> vec4<f32> {
  return vec4<f32>(scaleAt(m, b.x), scaleAt(m, b.y), scaleAt(m, b.z), scaleAt(m, b.w));
}

// Partial sums of thread t (of TPR) for the 4 rows of weight m whose first groups are b (row * G):
// groups t, t + TPR, ...
fn rowsDot(m: u32, b: vec4<u32>, t: u32) -> vec4<f32> {
  var acc = vec4<f32>(0.0);
  var g = t;
  if (PAIRS) {
    for (; g + TPR < p.G; g += 2u * TPR) {
      let h = g + TPR;
      let wa0 = wAt(m, b.x + g);
      let wa1 = wAt(m, b.y + g);
      let wa2 = wAt(m, b.z + g);
      let wa3 = wAt(m, b.w + g);
      let wb0 = wAt(m, b.x + h);
      let wb1 = wAt(m, b.y + h);
      let wb2 = wAt(m, b.z + h);
      let wb3 = wAt(m, b.w + h);
      let sa = scales4(m, b + g);
      let sb = scales4(m, b + h);
      acc += groupDot(g, wa0, wa1, wa2, wa3, sa) + groupDot(h, wb0, wb1, wb2, wb3, sb);
    }
  }
  // All groups without PAIRS; the odd one out with.
  for (; g < p.G; g += TPR) {
    acc += groupDot(g, wAt(m, b.x + g), wAt(m, b.y + g), wAt(m, b.z + g), wAt(m, b.w + g), scales4(m, b + g));
  }
  return acc;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32
#if SUBGROUPS
        , @builtin(subgroup_invocation_id) sgLane: u32, @builtin(subgroup_size) sgSize: u32
#endif
        ) {
#if !SUBGROUPS
  let sgLane = 0u;
  let sgSize = 1u;
#endif
#if NORM
  normInv = normScale(lid);
#endif
  let block = lid / TPR;
  let t = lid % TPR;
  var wg = wid.x + wid.y * nwg.x;
#if QKV
  // Which weight this workgroup does (uniform per workgroup), its rows and output offset.
  var m = 0u;
  var rows = p.rows0;
  var yOff = p.yOff0;
  if (wg >= p.wgs0 + p.wgs1) {
    m = 2u;
    wg -= p.wgs0 + p.wgs1;
    rows = p.rows2;
    yOff = p.yOff2;
  } else if (wg >= p.wgs0) {
    m = 1u;
    wg -= p.wgs0;
    rows = p.rows1;
    yOff = p.yOff1;
  }
#else
  let rows = p.rows;
  let yOff = p.yOffset;
#endif
  let row = (wg * (WG / TPR) + block) * 4u;
  // Rows past the end (last block of the part) read the last row and are not written.
  let last = max(rows, 1u) - 1u; // rows = 0: an absent QKV weight (its workgroups write nothing)
  let b = vec4<u32>(min(row, last), min(row + 1u, last), min(row + 2u, last), min(row + 3u, last)) * p.G;

#if QKV
  // One specialised loop per weight (m is constant inside each after inlining).
  var acc = vec4<f32>(0.0);
  if (m == 0u) {
    acc = rowsDot(0u, b, t);
  } else if (m == 1u) {
    acc = rowsDot(1u, b, t);
  } else {
    acc = rowsDot(2u, b, t);
  }
#else
  let acc = rowsDot(0u, b, t);
#endif
#if GATE_UP
  let acc1 = rowsDot(1u, b, t);
#else
  let acc1 = vec4<f32>(0.0);
#endif

  if (TPR == 1u) {
    for (var j = 0u; j < 4u; j++) {
      if (row + j < rows) { store(yOff + row + j, outVal(acc[j], acc1[j])); }
    }
    return;
  }

  let sum = blockSum(acc, lid, block, t, sgLane, sgSize);
#if GATE_UP
  let sum1 = blockSum(acc1, lid, block, t, sgLane, sgSize);
#else
  let sum1 = 0.0;
#endif
  // Thread t < 4 of the block finishes row row + t.
  if (t < 4u && row + t < rows) {
    store(yOff + row + t, outVal(sum, sum1));
  }
}
