#if SUBGROUPS
enable subgroups;
#endif
// q4_matvec: y[yOffset + r] = sum_k W[r, k] x[k] for the rows r of one row part of a q4g32
// weight (decode, batch 1). Format (src/quant/q4.ts): element k of row r is nibble k % 8 of u32
// word k / 8, low nibble first; w = (q - 8) * scale[r, k / 32]. One group of 32 weights is
// exactly one vec4<u32>, so the kernel walks the weights in whole groups.
// Bindings:
//   0 qweight [rows, G] vec4<u32> (= u32 [rows, K/8]), read; G = K / 32
//   1 scales  [rows, G] f16 (F16) | [ceil(rows * G / 2)] u32 holding f16 pairs (f32 path), read
//   2 x       [K / 4] vec4<act>, read
//   3 y       [>= yOffset + rows] act, read_write (only rows of this part are written)
//   4 params  { K, G, rows, yOffset }
// Work split: a thread owns 4 consecutive rows (one vec4<f32> accumulator, so each x load
// is reused 4 times) and strides over the groups g = t, t + TPR, ... of those rows; with PAIRS,
// two groups per loop iteration (8 weight loads issued before the math that uses them: more
// bytes in flight on GPUs; CPU JITs spill instead); nibbles become floats by a bit trick (GPUs)
// or a signed conversion (INTCVT, CPUs), see dot8. TPR threads
// share a 4-row block; a workgroup of WG threads holds WG / TPR blocks = 4 * WG / TPR rows.
// TPR = 1 (CPU-like adapters: a thread streams whole rows, no reduction) or a power of two >= 4
// (GPUs: TPR threads read consecutive 16-byte groups of a row, then a workgroup reduction:
// subgroupAdd + shared memory when SUBGROUPS, which needs subgroups of consecutive
// invocations no wider than TPR; shared memory alone otherwise).
// Dispatch: ceil(rows / (4 * WG / TPR)) workgroups spread over x/y by grid(); act = f16 when
// F16 else f32; accumulation is f32 either way.
#if F16
alias act = f16;
alias act4 = vec4<f16>;
#else
alias act = f32;
alias act4 = vec4<f32>;
#endif

struct Params { K: u32, G: u32, rows: u32, yOffset: u32 }

@group(0) @binding(0) var<storage, read> qweight: array<vec4<u32>>;
#if F16
@group(0) @binding(1) var<storage, read> scales: array<f16>;
#else
@group(0) @binding(1) var<storage, read> scales: array<u32>;
#endif
@group(0) @binding(2) var<storage, read> x: array<act4>;
@group(0) @binding(3) var<storage, read_write> y: array<act>;
@group(0) @binding(4) var<uniform> p: Params;

override WG: u32 = 256;
override TPR: u32 = 64;
override PAIRS: bool = true;
override INTCVT: bool = false;

// One vec4 (4 rows) per thread; the SUBGROUPS path uses only the first WG / subgroup_size.
var<workgroup> partial: array<vec4<f32>, WG>;

// Scale number i of this part (row-major [rows, G]).
fn scaleAt(i: u32) -> f32 {
#if F16
  return f32(scales[i]);
#else
  let pair = unpack2x16float(scales[i >> 1u]);
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
  let x0 = vec4<f32>(x[xo]);
  let x1 = vec4<f32>(x[xo + 1u]);
  let x2 = vec4<f32>(x[xo + 2u]);
  let x3 = vec4<f32>(x[xo + 3u]);
  let x4 = vec4<f32>(x[xo + 4u]);
  let x5 = vec4<f32>(x[xo + 5u]);
  let x6 = vec4<f32>(x[xo + 6u]);
  let x7 = vec4<f32>(x[xo + 7u]);
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

fn scales4(b: vec4<u32>) -> vec4<f32> {
  return vec4<f32>(scaleAt(b.x), scaleAt(b.y), scaleAt(b.z), scaleAt(b.w));
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32
#if SUBGROUPS
        , @builtin(subgroup_invocation_id) sgLane: u32, @builtin(subgroup_size) sgSize: u32
#endif
        ) {
  let block = lid / TPR;
  let t = lid % TPR;
  let row = ((wid.x + wid.y * nwg.x) * (WG / TPR) + block) * 4u;
  // Rows past the end (last block of the part) read the last row and are not written.
  let last = p.rows - 1u;
  let b0 = min(row, last) * p.G;
  let b1 = min(row + 1u, last) * p.G;
  let b2 = min(row + 2u, last) * p.G;
  let b3 = min(row + 3u, last) * p.G;

  let b = vec4<u32>(b0, b1, b2, b3);
  var acc = vec4<f32>(0.0);
  var g = t;
  if (PAIRS) {
    for (; g + TPR < p.G; g += 2u * TPR) {
      let h = g + TPR;
      let wa0 = qweight[b0 + g];
      let wa1 = qweight[b1 + g];
      let wa2 = qweight[b2 + g];
      let wa3 = qweight[b3 + g];
      let wb0 = qweight[b0 + h];
      let wb1 = qweight[b1 + h];
      let wb2 = qweight[b2 + h];
      let wb3 = qweight[b3 + h];
      let sa = scales4(b + g);
      let sb = scales4(b + h);
      acc += groupDot(g, wa0, wa1, wa2, wa3, sa) + groupDot(h, wb0, wb1, wb2, wb3, sb);
    }
  }
  // All groups without PAIRS; the odd one out with.
  for (; g < p.G; g += TPR) {
    acc += groupDot(g, qweight[b0 + g], qweight[b1 + g], qweight[b2 + g], qweight[b3 + g], scales4(b + g));
  }

  if (TPR == 1u) {
    for (var j = 0u; j < 4u; j++) {
      if (row + j < p.rows) { y[p.yOffset + row + j] = act(acc[j]); }
    }
    return;
  }

#if SUBGROUPS
  let part = subgroupAdd(acc);
  if (sgLane == 0u) { partial[lid / sgSize] = part; }
  workgroupBarrier();
  let count = TPR / sgSize;
#else
  partial[lid] = acc;
  workgroupBarrier();
  let count = TPR;
#endif
  // Thread t < 4 of the block finishes row row + t.
  if (t < 4u && row + t < p.rows) {
    let first = block * count;
    var sum = 0.0;
    for (var i = 0u; i < count; i++) { sum += partial[first + i][t]; }
    y[p.yOffset + row + t] = act(sum);
  }
}
