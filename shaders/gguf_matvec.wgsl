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
// What a thread walks (quants become floats without shifting vector lanes: lanesToF and
// unlane() in gguf_blocks.wgsl, 256^-b folded into x once for the 4 rows):
//   Q4_K (the K-block path): chunks of 16 bytes of quants (32 elements: 16 of sub-block 2q in
//     the low nibbles, the same 16 of sub-block 2q + 1 in the high ones, each nibble masked in
//     place, the high ones' 16 folded into x too), min(TPR, 8) threads per 256-element block,
//     each chunk 4 u32 loads per row; the block's 12 scale bytes unpacked word-wise once per
//     block and thread (kHead), each chunk's scale pair and min pair by masks (kScales).
//   Q6_K with WORD_ROWS (rows of whole words): chunks of 64 elements (16 of each quarter k of one
//     half n of the block: 16 ql bytes per nibble pair of quarters, 16 qh bytes), min(TPR, 4)
//     threads per block; the 6-bit q formed per word (nibbles | 2 high bits at bits 4, 5 of each
//     byte), the -32 applied once per quarter as -32 sum(x), the 4 scales and d once per chunk.
//   Q8_0 with WORD_ROWS: pairs of blocks (68 bytes = 17 words), the first block's quants read
//     against x shifted by 2 elements (they start 2 bytes past a word), the second's aligned.
//   Q4_0 with WORD_ROWS: likewise, pairs of 36 bytes (9 words), each word's low and high nibbles
//     masked in place (q4Lo, q4Hi) against the x of elements j and j + 16.
//   every other format (and Q6_K, Q8_0, Q4_0 rows that are not whole words): 32-element groups g = t,
//     t + TPR, ..., s (q . x) - m sum(x) per group with the scales decoded once per group
//     (groupScale) and sum(x) shared by the 4 rows.
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

#if W_Q4_K || W_Q4_0 && WORD_ROWS
// The low nibbles of the 4 bytes of w in place, as lanesToF (gguf_blocks.wgsl) gives them.
const M4 = vec4<u32>(0xfu, 0xf00u, 0xf0000u, 0xf000000u);
const M4HI = vec4<u32>(0xf0u, 0xf000u, 0xf00000u, 0xf0000000u);

fn nibs(w: u32) -> vec4<f32> {
  return lanesToF(vec4<u32>(w) & M4);
}
#endif

#if W_Q4_K

// The high nibbles likewise, in place (16 times the value; no shift). With INTCVT byte 3's
// (v 2^28) would pass 2^31: its top bit is flipped, so the i32 holds (v - 8) 2^28, and 2^31 is
// added back (exact).
fn nibsHi(w: u32) -> vec4<f32> {
  if (INTCVT) { return lanesToF(vec4<u32>(w ^ 0x80000000u) & M4HI) + vec4<f32>(0.0, 0.0, 0.0, 2147483648.0); }
  return lanesToF(vec4<u32>(w) & M4HI);
}

// Chunk c (0..7, bytes 16 + 16c of the block at o) of one row times x: xl = the 16 x of its low
// nibbles, xh of its high ones (both pre-scaled by unlane()), sl / sh their plain sums.
fn chunkDot(h: KHead, o: u32, c: u32, xl0: vec4<f32>, xl1: vec4<f32>, xl2: vec4<f32>, xl3: vec4<f32>,
            xh0: vec4<f32>, xh1: vec4<f32>, xh2: vec4<f32>, xh3: vec4<f32>, sl: f32, sh: f32) -> f32 {
  let w = quadAt(o + 16u + 16u * c);
  let lo = (dot(nibs(w.x), xl0) + dot(nibs(w.y), xl1)) + (dot(nibs(w.z), xl2) + dot(nibs(w.w), xl3));
  let hi = (dot(nibsHi(w.x), xh0) + dot(nibsHi(w.y), xh1)) + (dot(nibsHi(w.z), xh2) + dot(nibsHi(w.w), xh3));
  let s = kScales(h, c >> 1u);
  return (s.x * lo + s.y * hi) - (s.z * sl + s.w * sh);
}

// Partial sums of thread t (of TPR) for the 4 rows whose bytes start at b.
fn rowsDot(b: vec4<u32>, t: u32) -> vec4<f32> {
  let split = min(TPR, 8u); // threads per 256-element block
  let nb = p.K / 256u;
  let xs = unlane();
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
      let xs16 = xs * 0.0625; // nibsHi gives 16 q
      let e0 = xh0 * xs16;
      let e1 = xh1 * xs16;
      let e2 = xh2 * xs16;
      let e3 = xh3 * xs16;
      acc += vec4<f32>(chunkDot(h0, b.x + o, c, a0, a1, a2, a3, e0, e1, e2, e3, sl, sh),
                       chunkDot(h1, b.y + o, c, a0, a1, a2, a3, e0, e1, e2, e3, sl, sh),
                       chunkDot(h2, b.z + o, c, a0, a1, a2, a3, e0, e1, e2, e3, sl, sh),
                       chunkDot(h3, b.w + o, c, a0, a1, a2, a3, e0, e1, e2, e3, sl, sh));
    }
  }
  return acc;
}
#elif W_Q6_K && WORD_ROWS
// The 6-bit q of 4 elements from a word of low nibbles (bits 0..3 of each byte) and one with
// the 2 high bits in bits 4, 5 of each byte, as lanesToF gives them. (Masks only: SwiftShader
// emulates vector shifts lane by lane, so the high bits are moved once per word, not per byte.)
fn q6(l: u32, h: u32) -> vec4<f32> {
  return lanesToF(vec4<u32>((l & 0x0f0f0f0fu) | (h & 0x30303030u)) & M8B);
}

// The words at byte offsets a (ql, quarters 0 and 2), a + 32 (ql, quarters 1 and 3) and h (qh,
// bits 2k, 2k + 1 for quarter k) times each quarter's 4 x (xk, pre-scaled by unlane()): the 4
// quarters' q . x.
fn quarterDots(a: u32, h: u32, x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>) -> vec4<f32> {
  let wa = wqAt(a >> 2u);
  let wb = wqAt((a + 32u) >> 2u);
  let wh = wqAt(h >> 2u);
  return vec4<f32>(dot(q6(wa, wh << 4u), x0), dot(q6(wb, wh << 2u), x1), dot(q6(wa >> 4u, wh), x2), dot(q6(wb >> 4u, wh >> 2u), x3));
}

// Chunk (n, g) of one row's block at o from its quarters' q . x (dots) and the quarters' plain x
// sums (sx): d sum_k sc_k (q_k . x_k - 32 sum x_k), the scales sc[8 n + g + 2 k] (i8) being
// bytes 0 and 2 of the two words at 192 + 8 n + g.
fn chunkSum(o: u32, n: u32, g: u32, dots: vec4<f32>, sx: vec4<f32>) -> f32 {
  let s = o + 192u + 8u * n + g;
  let s01 = word(s);
  let s23 = word(s + 4u);
  // Bytes 0 and 2 of each word as signed values in place, no shifts: the sign bit flipped, the
  // byte masked (v + 128) 256^b, minus 128 256^b, times 256^-b (all exact).
  let v = vec4<f32>(vec4<i32>(bitcast<i32>((s01 ^ 0x80u) & 0xffu), bitcast<i32>((s01 ^ 0x800000u) & 0xff0000u),
                              bitcast<i32>((s23 ^ 0x80u) & 0xffu), bitcast<i32>((s23 ^ 0x800000u) & 0xff0000u)));
  let sc = (v - vec4<f32>(128.0, 8388608.0, 128.0, 8388608.0)) * vec4<f32>(1.0, 1.0 / 65536.0, 1.0, 1.0 / 65536.0);
  return halfAt(o + 208u) * (dot(sc, dots) - 32.0 * dot(sc, sx));
}

// Partial sums of thread t (of TPR) for the 4 rows whose bytes start at b: min(TPR, 4) threads
// per 256-element block, one chunk (n, g) of 64 elements each (elements 128 n + 32 k + 16 g +
// 0..15 of quarter k: ql bytes 64 n + 16 g (k = 0, 2: low, high nibbles) and 64 n + 32 + 16 g
// (k = 1, 3), qh bytes 128 + 32 n + 16 g).
// Blocks are 210 bytes, so a block starts s = 0 or 2 bytes past a word; with WORD_ROWS (rows are
// whole words: K / 256 even) the 4 rows share s. A chunk's bytes are read as the words starting
// s bytes before them (5 words when s = 2) and x is shifted by s elements to match, the s bytes
// outside the chunk meeting x = 0: no word is realigned (two loads, two shifts and a branch
// each: twice the time on SwiftShader). Rows that are not whole words take the group path.
fn rowsDot(b: vec4<u32>, t: u32) -> vec4<f32> {
  let split = min(TPR, 4u);
  let xs = unlane();
  var acc = vec4<f32>(0.0);
  for (var blk = t / split; blk < p.K / 256u; blk += TPR / split) {
    let o = blk * BB;
    let s = (b.x + o) & 3u;
    let shifted = s != 0u;
    let words = select(4u, 5u, shifted);
    for (var c = t % split; c < 4u; c += split) {
      let n = c >> 1u;
      let g = c & 1u;
      // Per row, the 4 quarters' q . x; the quarters' plain x sums.
      var d0 = vec4<f32>(0.0);
      var d1 = vec4<f32>(0.0);
      var d2 = vec4<f32>(0.0);
      var d3 = vec4<f32>(0.0);
      var sx = vec4<f32>(0.0);
      // The previous word's x of each quarter (for the shifted form).
      var p0 = vec4<f32>(0.0);
      var p1 = vec4<f32>(0.0);
      var p2 = vec4<f32>(0.0);
      var p3 = vec4<f32>(0.0);
      let xb = blk * 64u + 32u * n + 4u * g;
      let qa = o - s + 64u * n + 16u * g;
      let qh = o - s + 128u + 32u * n + 16u * g;
      for (var j = 0u; j < words; j++) {
        // Elements 4 j + 0..3 of each quarter (none past the chunk).
        let inChunk = j < 4u;
        let v0 = select(vec4<f32>(0.0), xAt(xb + j), inChunk);
        let v1 = select(vec4<f32>(0.0), xAt(xb + 8u + j), inChunk);
        let v2 = select(vec4<f32>(0.0), xAt(xb + 16u + j), inChunk);
        let v3 = select(vec4<f32>(0.0), xAt(xb + 24u + j), inChunk);
        let one = vec4<f32>(1.0);
        sx += vec4<f32>(dot(v0, one), dot(v1, one), dot(v2, one), dot(v3, one));
        let a0 = select(v0, vec4<f32>(p0.zw, v0.xy), shifted) * xs;
        let a1 = select(v1, vec4<f32>(p1.zw, v1.xy), shifted) * xs;
        let a2 = select(v2, vec4<f32>(p2.zw, v2.xy), shifted) * xs;
        let a3 = select(v3, vec4<f32>(p3.zw, v3.xy), shifted) * xs;
        p0 = v0;
        p1 = v1;
        p2 = v2;
        p3 = v3;
        let w = 4u * j;
        d0 += quarterDots(b.x + qa + w, b.x + qh + w, a0, a1, a2, a3);
        d1 += quarterDots(b.y + qa + w, b.y + qh + w, a0, a1, a2, a3);
        d2 += quarterDots(b.z + qa + w, b.z + qh + w, a0, a1, a2, a3);
        d3 += quarterDots(b.w + qa + w, b.w + qh + w, a0, a1, a2, a3);
      }
      acc += vec4<f32>(chunkSum(b.x + o, n, g, d0, sx), chunkSum(b.y + o, n, g, d1, sx),
                       chunkSum(b.z + o, n, g, d2, sx), chunkSum(b.w + o, n, g, d3, sx));
    }
  }
  return acc;
}
#elif W_Q8_0 && WORD_ROWS
// The first block of the pair of 34-byte blocks at o (a word boundary): its 32 quants are bytes
// 2..33, read as words 0..8 of the pair against x shifted by 2 elements (s0..s8: the d bytes
// before them and the next block's d after meet x = 0); d is the low half of word 0.
fn firstOfPair(o: u32, s0: vec4<f32>, s1: vec4<f32>, s2: vec4<f32>, s3: vec4<f32>, s4: vec4<f32>, s5: vec4<f32>,
               s6: vec4<f32>, s7: vec4<f32>, s8: vec4<f32>) -> f32 {
  let i = o >> 2u;
  let w0 = wqAt(i);
  let q = ((dot(i8Lanes(w0), s0) + dot(i8Lanes(wqAt(i + 1u)), s1)) + (dot(i8Lanes(wqAt(i + 2u)), s2) + dot(i8Lanes(wqAt(i + 3u)), s3)))
        + ((dot(i8Lanes(wqAt(i + 4u)), s4) + dot(i8Lanes(wqAt(i + 5u)), s5)) + (dot(i8Lanes(wqAt(i + 6u)), s6) + dot(i8Lanes(wqAt(i + 7u)), s7)))
        + dot(i8Lanes(wqAt(i + 8u)), s8);
  return unpack2x16float(w0).x * q;
}

// The second block of the pair at o: d is the high half of word 8, the quants words 9..16.
fn secondOfPair(o: u32, y0: vec4<f32>, y1: vec4<f32>, y2: vec4<f32>, y3: vec4<f32>, y4: vec4<f32>, y5: vec4<f32>,
                y6: vec4<f32>, y7: vec4<f32>) -> f32 {
  let i = o >> 2u;
  let q = ((dot(i8Lanes(wqAt(i + 9u)), y0) + dot(i8Lanes(wqAt(i + 10u)), y1)) + (dot(i8Lanes(wqAt(i + 11u)), y2) + dot(i8Lanes(wqAt(i + 12u)), y3)))
        + ((dot(i8Lanes(wqAt(i + 13u)), y4) + dot(i8Lanes(wqAt(i + 14u)), y5)) + (dot(i8Lanes(wqAt(i + 15u)), y6) + dot(i8Lanes(wqAt(i + 16u)), y7)));
  return unpack2x16float(wqAt(i + 8u)).y * q;
}

// Partial sums of thread t (of TPR) for the 4 rows whose bytes start at b: pairs of blocks
// (64 elements, 68 bytes, 17 words) r = t, t + TPR, ... With WORD_ROWS (K / 32 even) every pair
// starts on a word, so no word is realigned (the group path realigns every other block's).
fn rowsDot(b: vec4<u32>, t: u32) -> vec4<f32> {
  let u = unlane();
  let z = vec2<f32>(0.0);
  var acc = vec4<f32>(0.0);
  for (var r = t; r < p.K / 64u; r += TPR) {
    let o = 68u * r;
    let xo = 16u * r;
    let x0 = xAt(xo);
    let x1 = xAt(xo + 1u);
    let x2 = xAt(xo + 2u);
    let x3 = xAt(xo + 3u);
    let x4 = xAt(xo + 4u);
    let x5 = xAt(xo + 5u);
    let x6 = xAt(xo + 6u);
    let x7 = xAt(xo + 7u);
    let s0 = vec4<f32>(z, x0.xy) * u;
    let s1 = vec4<f32>(x0.zw, x1.xy) * u;
    let s2 = vec4<f32>(x1.zw, x2.xy) * u;
    let s3 = vec4<f32>(x2.zw, x3.xy) * u;
    let s4 = vec4<f32>(x3.zw, x4.xy) * u;
    let s5 = vec4<f32>(x4.zw, x5.xy) * u;
    let s6 = vec4<f32>(x5.zw, x6.xy) * u;
    let s7 = vec4<f32>(x6.zw, x7.xy) * u;
    let s8 = vec4<f32>(x7.zw, z) * u;
    acc += vec4<f32>(firstOfPair(b.x + o, s0, s1, s2, s3, s4, s5, s6, s7, s8), firstOfPair(b.y + o, s0, s1, s2, s3, s4, s5, s6, s7, s8),
                     firstOfPair(b.z + o, s0, s1, s2, s3, s4, s5, s6, s7, s8), firstOfPair(b.w + o, s0, s1, s2, s3, s4, s5, s6, s7, s8));
    let y0 = xAt(xo + 8u) * u;
    let y1 = xAt(xo + 9u) * u;
    let y2 = xAt(xo + 10u) * u;
    let y3 = xAt(xo + 11u) * u;
    let y4 = xAt(xo + 12u) * u;
    let y5 = xAt(xo + 13u) * u;
    let y6 = xAt(xo + 14u) * u;
    let y7 = xAt(xo + 15u) * u;
    acc += vec4<f32>(secondOfPair(b.x + o, y0, y1, y2, y3, y4, y5, y6, y7), secondOfPair(b.y + o, y0, y1, y2, y3, y4, y5, y6, y7),
                     secondOfPair(b.z + o, y0, y1, y2, y3, y4, y5, y6, y7), secondOfPair(b.w + o, y0, y1, y2, y3, y4, y5, y6, y7));
  }
  return acc;
}
#elif W_Q4_0 && WORD_ROWS
// Q4_0's q - 8 of the 4 bytes' low nibbles of w in place (lane units, as lanesToF gives them).
fn q4Lo(w: u32) -> vec4<f32> {
  return nibs(w) - 8.0 / unlane();
}

// The same of the high nibbles, 16 (q - 8) in place, masks only. With INTCVT byte 3's top bit
// is flipped: its i32 is then (q - 8) 2^28 already (q ^ 8 as a signed nibble).
fn q4Hi(w: u32) -> vec4<f32> {
  if (INTCVT) { return lanesToF(vec4<u32>(w ^ 0x80000000u) & M4HI) - vec4<f32>(128.0, 32768.0, 8388608.0, 0.0); }
  return lanesToF(vec4<u32>(w) & M4HI) - 128.0 / unlane();
}

// Word w's quants against xl (the x of its low nibbles) and xh (of its high ones, pre-scaled by
// 1/16 more).
fn nibDot(w: u32, xl: vec4<f32>, xh: vec4<f32>) -> f32 {
  return dot(q4Lo(w), xl) + dot(q4Hi(w), xh);
}

// The first block of the pair of 18-byte blocks at o (a word boundary): its 16 quant bytes are
// bytes 2..17, read as words 0..4 against x shifted by 2 elements (l0..l4 for the low nibbles,
// elements 0..15; h0..h4 for the high ones, 16..31; the d bytes around them meet x = 0); d is the
// low half of word 0.
fn firstOfPair(o: u32, l0: vec4<f32>, l1: vec4<f32>, l2: vec4<f32>, l3: vec4<f32>, l4: vec4<f32>,
               h0: vec4<f32>, h1: vec4<f32>, h2: vec4<f32>, h3: vec4<f32>, h4: vec4<f32>) -> f32 {
  let i = o >> 2u;
  let w0 = wqAt(i);
  let q = (nibDot(w0, l0, h0) + nibDot(wqAt(i + 1u), l1, h1)) + (nibDot(wqAt(i + 2u), l2, h2) + nibDot(wqAt(i + 3u), l3, h3))
        + nibDot(wqAt(i + 4u), l4, h4);
  return unpack2x16float(w0).x * q;
}

// The second block of the pair at o: d is the high half of word 4, the quants words 5..8.
fn secondOfPair(o: u32, l0: vec4<f32>, l1: vec4<f32>, l2: vec4<f32>, l3: vec4<f32>,
                h0: vec4<f32>, h1: vec4<f32>, h2: vec4<f32>, h3: vec4<f32>) -> f32 {
  let i = o >> 2u;
  let q = (nibDot(wqAt(i + 5u), l0, h0) + nibDot(wqAt(i + 6u), l1, h1)) + (nibDot(wqAt(i + 7u), l2, h2) + nibDot(wqAt(i + 8u), l3, h3));
  return unpack2x16float(wqAt(i + 4u)).y * q;
}

// Partial sums of thread t (of TPR) for the 4 rows whose bytes start at b: pairs of blocks
// (64 elements, 36 bytes, 9 words) r = t, t + TPR, ... With WORD_ROWS (K / 32 even) every pair
// starts on a word, so no word is realigned (the group path realigns every other block's).
fn rowsDot(b: vec4<u32>, t: u32) -> vec4<f32> {
  let u = unlane();
  let uh = u * 0.0625; // q4Hi gives 16 (q - 8)
  let z = vec2<f32>(0.0);
  var acc = vec4<f32>(0.0);
  for (var r = t; r < p.K / 64u; r += TPR) {
    let o = 36u * r;
    let xo = 16u * r;
    let x0 = xAt(xo);
    let x1 = xAt(xo + 1u);
    let x2 = xAt(xo + 2u);
    let x3 = xAt(xo + 3u);
    let x4 = xAt(xo + 4u);
    let x5 = xAt(xo + 5u);
    let x6 = xAt(xo + 6u);
    let x7 = xAt(xo + 7u);
    let l0 = vec4<f32>(z, x0.xy) * u;
    let l1 = vec4<f32>(x0.zw, x1.xy) * u;
    let l2 = vec4<f32>(x1.zw, x2.xy) * u;
    let l3 = vec4<f32>(x2.zw, x3.xy) * u;
    let l4 = vec4<f32>(x3.zw, z) * u;
    let h0 = vec4<f32>(z, x4.xy) * uh;
    let h1 = vec4<f32>(x4.zw, x5.xy) * uh;
    let h2 = vec4<f32>(x5.zw, x6.xy) * uh;
    let h3 = vec4<f32>(x6.zw, x7.xy) * uh;
    let h4 = vec4<f32>(x7.zw, z) * uh;
    acc += vec4<f32>(firstOfPair(b.x + o, l0, l1, l2, l3, l4, h0, h1, h2, h3, h4), firstOfPair(b.y + o, l0, l1, l2, l3, l4, h0, h1, h2, h3, h4),
                     firstOfPair(b.z + o, l0, l1, l2, l3, l4, h0, h1, h2, h3, h4), firstOfPair(b.w + o, l0, l1, l2, l3, l4, h0, h1, h2, h3, h4));
    let y0 = xAt(xo + 8u) * u;
    let y1 = xAt(xo + 9u) * u;
    let y2 = xAt(xo + 10u) * u;
    let y3 = xAt(xo + 11u) * u;
    let e0 = xAt(xo + 12u) * uh;
    let e1 = xAt(xo + 13u) * uh;
    let e2 = xAt(xo + 14u) * uh;
    let e3 = xAt(xo + 15u) * uh;
    acc += vec4<f32>(secondOfPair(b.x + o, y0, y1, y2, y3, e0, e1, e2, e3), secondOfPair(b.y + o, y0, y1, y2, y3, e0, e1, e2, e3),
                     secondOfPair(b.z + o, y0, y1, y2, y3, e0, e1, e2, e3), secondOfPair(b.w + o, y0, y1, y2, y3, e0, e1, e2, e3));
  }
  return acc;
}
#else
// Group g (32 elements, 4 octets) of one row times x (pre-scaled by unlane(); xs: the plain
// sum): s (q . x) - m sum(x) per half, the scales decoded once for the 32 elements.
fn groupDot(rowBase: u32, g: u32, x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>,
            x4: vec4<f32>, x5: vec4<f32>, x6: vec4<f32>, x7: vec4<f32>, xs: f32) -> f32 {
  let sc = groupScale(rowBase, g);
  let q0 = octetL(rowBase, 4u * g);
  let q1 = octetL(rowBase, 4u * g + 1u);
  let q2 = octetL(rowBase, 4u * g + 2u);
  let q3 = octetL(rowBase, 4u * g + 3u);
  let lo = dot(q0.a, x0) + dot(q0.b, x1) + dot(q1.a, x2) + dot(q1.b, x3);
  let hi = dot(q2.a, x4) + dot(q2.b, x5) + dot(q3.a, x6) + dot(q3.b, x7);
  return sc.x * lo + sc.y * hi - sc.z * xs;
}

// Partial sums of thread t (of TPR) for the 4 rows whose bytes start at b.
fn rowsDot(b: vec4<u32>, t: u32) -> vec4<f32> {
  let u = unlane();
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
    let a0 = x0 * u;
    let a1 = x1 * u;
    let a2 = x2 * u;
    let a3 = x3 * u;
    let a4 = x4 * u;
    let a5 = x5 * u;
    let a6 = x6 * u;
    let a7 = x7 * u;
    acc += vec4<f32>(groupDot(b.x, g, a0, a1, a2, a3, a4, a5, a6, a7, xs), groupDot(b.y, g, a0, a1, a2, a3, a4, a5, a6, a7, xs),
                     groupDot(b.z, g, a0, a1, a2, a3, a4, a5, a6, a7, xs), groupDot(b.w, g, a0, a1, a2, a3, a4, a5, a6, a7, xs));
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
