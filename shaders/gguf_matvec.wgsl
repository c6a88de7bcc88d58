#if SUBGROUPS
enable subgroups;
#endif
// gguf_matvec: y[yOffset + r] = sum_k W[r, k] x[k] for the rows r of one row part of a weight
// held in a ggml block format as stored in the GGUF (decode, batch 1). The format is one define
// (W_Q4_K, ...; gguf_blocks.wgsl, appended to this file, reads the blocks).
// Bindings:
//   0 wq [rowBase + rows rows of rowBytes bytes] u32 (rowBytes = K / QK * BB; the buffer padded
//     to 4), read; the part's rows start at row rowBase (a buffer shared by adjacent weights:
//     q | k | v, gate | up); WQ4 (Q4_K, rows of 144-byte blocks): the same bytes as vec4<u32>
//   1 x  [K / 4] vec4<act>, read
//   2 y  [>= yOffset + rows] act, read_write (only this part's rows are written)
//   NORM: 3 nw [K] the norm weight: f32, or with NORM_F16 f16 pairs packed in u32 [K / 2]
//   last: params { K, rows, yOffset, rowBase } | GATE_UP: + upRow; NORM: + eps (f32)
// Variants (at most one of RESIDUAL, GATE_UP; NORM with either but RESIDUAL):
//   plain:    y[yOffset + r] = (W x)[r].
//   RESIDUAL: y[yOffset + r] = y[yOffset + r] + act((W x)[r]) (the o- and down-projections).
//   GATE_UP:  the gate's rows at rowBase, the up's (same type and shape) at rowBase + upRow of the
//             same buffer: y[yOffset + r] = silu((W_gate x)[r]) * (W_up x)[r].
//   NORM:     x is the residual stream, the RMSNorm before the projection folded in.
//   (matvec_common.wgsl, appended to this file, has the x reads, the reduction and the epilogue.)
// Work split (as q4_matvec.wgsl): a thread owns 4 consecutive rows (one vec4 accumulator, each
// x load reused for 4 rows); TPR threads share a block of 4 rows, a workgroup of WG threads holds
// 4 * WG / TPR rows. TPR = 1 (CPU adapters: a thread streams whole rows, no reduction) or a power
// of two >= 4 (GPUs: a workgroup reduction, subgroupAdd + shared memory when SUBGROUPS, which
// needs subgroups of consecutive invocations no wider than TPR; shared memory alone otherwise).
// What a thread walks:
//   Q4_K (the K-block path): chunks of 16 bytes of quants (32 elements: 16 of sub-block 2q in
//     the low nibbles, the same 16 of sub-block 2q + 1 in the high ones), min(TPR, 8) threads per
//     256-element block, each chunk 4 u32 loads per row; the block's 12 scale bytes decoded
//     word-wise once per block and thread (kHead). Nibbles become floats as q4_matvec's do: a
//     masked nibble q 256^b as a signed int (INTCVT, CPUs) or by the 2^23 bit trick (GPUs),
//     with 256^-b folded into x once per chunk for the 4 rows.
//   Q6_K: chunks of 64 elements (16 of each quarter k of one half n of the block: 16 ql bytes per
//     nibble pair of quarters, 16 qh bytes), min(TPR, 4) threads per block; the 6-bit q formed per
//     byte in place (nibble | 2 high bits << 4) and converted as Q4_K's nibbles, the -32 applied
//     once per quarter as -32 sum(x), the 4 scales and d once per chunk.
//   every other format: 32-element groups g = t, t + TPR, ..., s (q . x) - m sum(x) per group
//     with the scales decoded once per group (groupScale) and sum(x) shared by the 4 rows.
// Rows past the end read the last row and are not written. Dispatch: ceil(rows / (4 * WG / TPR))
// workgroups spread over x/y by grid(). act = f16 when F16 else f32; accumulation is f32 either
// way. K is a multiple of 32 (and of the format's block).
#if F16
alias act = f16;
alias act4 = vec4<f16>;
#else
alias act = f32;
alias act4 = vec4<f32>;
#endif

#if GATE_UP && NORM
struct Params { K: u32, rows: u32, yOffset: u32, rowBase: u32, upRow: u32, eps: f32 }
#elif GATE_UP
struct Params { K: u32, rows: u32, yOffset: u32, rowBase: u32, upRow: u32 }
#elif NORM
struct Params { K: u32, rows: u32, yOffset: u32, rowBase: u32, eps: f32 }
#else
struct Params { K: u32, rows: u32, yOffset: u32, rowBase: u32 }
#endif

#if WQ4
@group(0) @binding(0) var<storage, read> wq: array<vec4<u32>>;
#else
@group(0) @binding(0) var<storage, read> wq: array<u32>;
#endif
@group(0) @binding(1) var<storage, read> x: array<act4>;
@group(0) @binding(2) var<storage, read_write> y: array<act>;
#if NORM && NORM_F16
@group(0) @binding(3) var<storage, read> nw: array<u32>;
#elif NORM
@group(0) @binding(3) var<storage, read> nw: array<f32>;
#endif
#if NORM
@group(0) @binding(4) var<uniform> p: Params;
#else
@group(0) @binding(3) var<uniform> p: Params;
#endif

override WG: u32 = 128;
override TPR: u32 = 32;
override INTCVT: bool = false;

#if W_Q4_K || W_Q6_K
// Per-byte small integers as floats, exactly. `lanes` holds lane b's value v_b in place, v_b 256^b
// (< 2^30, a positive i32): with INTCVT one int->float conversion gives v_b 256^b; else lanes 2, 3
// move down 16 bits and each v_b 256^(b & 1) < 2^23 is OR-ed into the bits of 2^23, minus 2^23 (no
// int->float conversion, quarter rate on GPUs). xScale undoes the powers of 256 on x (exact,
// powers of two; an x below 2^-102 would become subnormal, far below any tolerance).
const M8 = vec4<u32>(0xfu, 0xf00u, 0xf0000u, 0xf000000u);
const HALVES = vec4<u32>(0u, 0u, 16u, 16u);
const MAGIC = vec4<u32>(0x4b000000u);

fn lanesToF(lanes: vec4<u32>) -> vec4<f32> {
  if (INTCVT) { return vec4<f32>(bitcast<vec4<i32>>(lanes)); }
  return bitcast<vec4<f32>>((lanes >> HALVES) | MAGIC) - vec4<f32>(8388608.0);
}

// The low nibbles of the 4 bytes of w (as lanesToF gives them).
fn nibs(w: u32) -> vec4<f32> {
  return lanesToF(vec4<u32>(w) & M8);
}

fn xScale() -> vec4<f32> {
  if (INTCVT) { return vec4<f32>(1.0, 1.0 / 256.0, 1.0 / 65536.0, 1.0 / 16777216.0); }
  return vec4<f32>(1.0, 1.0 / 256.0, 1.0, 1.0 / 256.0);
}
#endif

#if W_Q4_K
// Chunk c (0..7, bytes 16 + 16c of the block at o) of one row times x: xl = the 16 x of its low
// nibbles, xh of its high ones (both pre-scaled by xScale), sl / sh their plain sums.
fn chunkDot(h: KHead, o: u32, c: u32, xl0: vec4<f32>, xl1: vec4<f32>, xl2: vec4<f32>, xl3: vec4<f32>,
            xh0: vec4<f32>, xh1: vec4<f32>, xh2: vec4<f32>, xh3: vec4<f32>, sl: f32, sh: f32) -> f32 {
  let w = quadAt(o + 16u + 16u * c);
  let lo = (dot(nibs(w.x), xl0) + dot(nibs(w.y), xl1)) + (dot(nibs(w.z), xl2) + dot(nibs(w.w), xl3));
  let hi = (dot(nibs(w.x >> 4u), xh0) + dot(nibs(w.y >> 4u), xh1)) + (dot(nibs(w.z >> 4u), xh2) + dot(nibs(w.w >> 4u), xh3));
  let s = kScales(h, c >> 1u);
  return (s.x * lo + s.y * hi) - (s.z * sl + s.w * sh);
}

// Partial sums of thread t (of TPR) for the 4 rows whose bytes start at b.
fn rowsDot(b: vec4<u32>, t: u32) -> vec4<f32> {
  let split = min(TPR, 8u); // threads per 256-element block
  let nb = p.K / 256u;
  let xs = xScale();
  var acc = vec4<f32>(0.0);
  for (var blk = t / split; blk < nb; blk += TPR / split) {
    let o = blk * BB;
    let h0 = kHead(b.x + o);
    let h1 = kHead(b.y + o);
    let h2 = kHead(b.z + o);
    let h3 = kHead(b.w + o);
    for (var c = t % split; c < 8u; c += split) {
      // Chunk c: elements 64 (c / 2) + 16 (c % 2) + 0..15 (low nibbles) and + 32 (high).
      let xo = blk * 64u + (c >> 1u) * 16u + (c & 1u) * 4u;
      let xl0 = xAt(xo);
      let xl1 = xAt(xo + 1u);
      let xl2 = xAt(xo + 2u);
      let xl3 = xAt(xo + 3u);
      let xh0 = xAt(xo + 8u);
      let xh1 = xAt(xo + 9u);
      let xh2 = xAt(xo + 10u);
      let xh3 = xAt(xo + 11u);
      let sl = dot((xl0 + xl1) + (xl2 + xl3), vec4<f32>(1.0));
      let sh = dot((xh0 + xh1) + (xh2 + xh3), vec4<f32>(1.0));
      let a0 = xl0 * xs;
      let a1 = xl1 * xs;
      let a2 = xl2 * xs;
      let a3 = xl3 * xs;
      let e0 = xh0 * xs;
      let e1 = xh1 * xs;
      let e2 = xh2 * xs;
      let e3 = xh3 * xs;
      acc += vec4<f32>(chunkDot(h0, b.x + o, c, a0, a1, a2, a3, e0, e1, e2, e3, sl, sh),
                       chunkDot(h1, b.y + o, c, a0, a1, a2, a3, e0, e1, e2, e3, sl, sh),
                       chunkDot(h2, b.z + o, c, a0, a1, a2, a3, e0, e1, e2, e3, sl, sh),
                       chunkDot(h3, b.w + o, c, a0, a1, a2, a3, e0, e1, e2, e3, sl, sh));
    }
  }
  return acc;
}
#elif W_Q6_K
const M2 = vec4<u32>(0x3u, 0x300u, 0x30000u, 0x3000000u);

// The 6-bit q of 4 elements: low nibbles of the 4 bytes of l (shifted to bit 0), 2 high bits from
// the 4 bytes of h (shifted to bit 0), as lanesToF gives them.
fn q6(l: u32, h: u32) -> vec4<f32> {
  return lanesToF((vec4<u32>(l) & M8) | ((vec4<u32>(h) & M2) << vec4<u32>(4u)));
}

// Word j (elements 4j .. 4j + 3) of chunk (n, g) of one row's block at o, in each quarter k: the
// chunk is elements 128 n + 32 k + 16 g + 0..15 for k = 0..3, i.e. ql bytes 64 n + 16 g (k = 0,
// 2: low, high nibbles) and 64 n + 32 + 16 g (k = 1, 3), qh bytes 128 + 32 n + 16 g (bits 2k,
// 2k + 1). xk: quarter k's 4 x, pre-scaled by xScale. Returns the 4 quarters' q . x.
fn quarterDots(o: u32, n: u32, g: u32, j: u32, x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>) -> vec4<f32> {
  let a = o + 64u * n + 16u * g + 4u * j;
  let wa = word(a);
  let wb = word(a + 32u);
  let wh = word(o + 128u + 32u * n + 16u * g + 4u * j);
  return vec4<f32>(dot(q6(wa, wh), x0), dot(q6(wb, wh >> 2u), x1), dot(q6(wa >> 4u, wh >> 4u), x2), dot(q6(wb >> 4u, wh >> 6u), x3));
}

// Chunk (n, g) of one row's block at o from its quarters' q . x (dots) and the quarters' plain x
// sums (sx): d sum_k sc_k (q_k . x_k - 32 sum x_k), the scales sc[8 n + g + 2 k] (i8) being
// bytes 0 and 2 of the two words at 192 + 8 n + g.
fn chunkSum(o: u32, n: u32, g: u32, dots: vec4<f32>, sx: vec4<f32>) -> f32 {
  let s = o + 192u + 8u * n + g;
  let s01 = word(s);
  let s23 = word(s + 4u);
  let sc = vec4<f32>(vec4<i32>(bitcast<i32>(s01 << 24u), bitcast<i32>(s01 << 8u), bitcast<i32>(s23 << 24u), bitcast<i32>(s23 << 8u)) >> vec4<u32>(24u));
  return halfAt(o + 208u) * (dot(sc, dots) - 32.0 * dot(sc, sx));
}

// Partial sums of thread t (of TPR) for the 4 rows whose bytes start at b: min(TPR, 4) threads
// per 256-element block, one chunk (n, g) of 64 elements each.
fn rowsDot(b: vec4<u32>, t: u32) -> vec4<f32> {
  let split = min(TPR, 4u);
  let xs = xScale();
  var acc = vec4<f32>(0.0);
  for (var blk = t / split; blk < p.K / 256u; blk += TPR / split) {
    let o = blk * BB;
    for (var c = t % split; c < 4u; c += split) {
      let n = c >> 1u;
      let g = c & 1u;
      // Per row, the 4 quarters' q . x; the quarters' plain x sums.
      var d0 = vec4<f32>(0.0);
      var d1 = vec4<f32>(0.0);
      var d2 = vec4<f32>(0.0);
      var d3 = vec4<f32>(0.0);
      var sx = vec4<f32>(0.0);
      for (var j = 0u; j < 4u; j++) {
        // Elements 128 n + 32 k + 16 g + 4 j + 0..3 of quarter k.
        let xo = blk * 64u + 32u * n + 4u * g + j;
        let v0 = xAt(xo);
        let v1 = xAt(xo + 8u);
        let v2 = xAt(xo + 16u);
        let v3 = xAt(xo + 24u);
        let one = vec4<f32>(1.0);
        sx += vec4<f32>(dot(v0, one), dot(v1, one), dot(v2, one), dot(v3, one));
        let a0 = v0 * xs;
        let a1 = v1 * xs;
        let a2 = v2 * xs;
        let a3 = v3 * xs;
        d0 += quarterDots(b.x + o, n, g, j, a0, a1, a2, a3);
        d1 += quarterDots(b.y + o, n, g, j, a0, a1, a2, a3);
        d2 += quarterDots(b.z + o, n, g, j, a0, a1, a2, a3);
        d3 += quarterDots(b.w + o, n, g, j, a0, a1, a2, a3);
      }
      acc += vec4<f32>(chunkSum(b.x + o, n, g, d0, sx), chunkSum(b.y + o, n, g, d1, sx),
                       chunkSum(b.z + o, n, g, d2, sx), chunkSum(b.w + o, n, g, d3, sx));
    }
  }
  return acc;
}
#else
// Group g (32 elements, 4 octets) of one row times x: s (q . x) - m sum(x) per half, the
// scales decoded once for the 32 elements.
fn groupDot(rowBase: u32, g: u32, x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>,
            x4: vec4<f32>, x5: vec4<f32>, x6: vec4<f32>, x7: vec4<f32>, xs: f32) -> f32 {
  let sc = groupScale(rowBase, g);
  let q0 = octetQ(rowBase, 4u * g);
  let q1 = octetQ(rowBase, 4u * g + 1u);
  let q2 = octetQ(rowBase, 4u * g + 2u);
  let q3 = octetQ(rowBase, 4u * g + 3u);
  let lo = dot(q0.a, x0) + dot(q0.b, x1) + dot(q1.a, x2) + dot(q1.b, x3);
  let hi = dot(q2.a, x4) + dot(q2.b, x5) + dot(q3.a, x6) + dot(q3.b, x7);
  return sc.x * lo + sc.y * hi - sc.z * xs;
}

// Partial sums of thread t (of TPR) for the 4 rows whose bytes start at b.
fn rowsDot(b: vec4<u32>, t: u32) -> vec4<f32> {
  var acc = vec4<f32>(0.0);
  for (var g = t; g < p.K / 32u; g += TPR) {
    let xo = 8u * g;
    let x0 = xAt(xo);
    let x1 = xAt(xo + 1u);
    let x2 = xAt(xo + 2u);
    let x3 = xAt(xo + 3u);
    let x4 = xAt(xo + 4u);
    let x5 = xAt(xo + 5u);
    let x6 = xAt(xo + 6u);
    let x7 = xAt(xo + 7u);
    let xs = dot((x0 + x1) + (x2 + x3) + ((x4 + x5) + (x6 + x7)), vec4<f32>(1.0));
    acc += vec4<f32>(groupDot(b.x, g, x0, x1, x2, x3, x4, x5, x6, x7, xs), groupDot(b.y, g, x0, x1, x2, x3, x4, x5, x6, x7, xs),
                     groupDot(b.z, g, x0, x1, x2, x3, x4, x5, x6, x7, xs), groupDot(b.w, g, x0, x1, x2, x3, x4, x5, x6, x7, xs));
  }
  return acc;
}
#endif

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
  let wg = wid.x + wid.y * nwg.x;
  let row = (wg * (WG / TPR) + block) * 4u;
  let last = max(p.rows, 1u) - 1u;
  let rb = rowBytesOf(p.K);
  let b = (vec4<u32>(min(row, last), min(row + 1u, last), min(row + 2u, last), min(row + 3u, last)) + p.rowBase) * rb;
  let acc = rowsDot(b, t);
#if GATE_UP
  let acc1 = rowsDot(b + p.upRow * rb, t);
#else
  let acc1 = vec4<f32>(0.0);
#endif
  if (TPR == 1u) {
    for (var j = 0u; j < 4u; j++) {
      if (row + j < p.rows) { store(p.yOffset + row + j, outVal(acc[j], acc1[j])); }
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
  if (t < 4u && row + t < p.rows) {
    store(p.yOffset + row + t, outVal(sum, sum1));
  }
}
