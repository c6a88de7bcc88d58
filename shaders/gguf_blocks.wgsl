// gguf_blocks: ggml's block formats read as stored, shared by gguf_matvec, gguf_matmul and
// embedding (GGUF variant). Not a kernel: src/kernels/gguf.ts appends it to those shaders (WGSL
// declarations are order-free, so the op's own line numbers stay its file's). The op declares
// the weight binding (a row part's bytes, padded to 4) as `wq: array<u32>`, or with the WQ4
// define as `wq: array<vec4<u32>>` (formats whose rows are whole 16-byte units: one 16-byte load
// where a kernel reads a block's 16-byte quads), and exactly one format define: W_F32, W_F16,
// W_Q4_0, W_Q4_1, W_Q5_0, W_Q8_0, W_Q4_K, W_Q5_K or W_Q6_K.
//
// Unit of work: 8 consecutive elements of a row (an "octet", c = k / 8), which in every format
// share one scale s and one offset m: element i = s * q_i - m. `octetQ` gives the q, and
// `groupScale` the scales of a 32-element group (4 octets), so a matvec decodes them once per 32. Formed in f32 exactly as ggml's
// dequantize_row_* forms it (the same products, each exact or rounded once), so the values are
// bit-identical to ggml's wherever the compiler does not fuse s * q - m into one FMA (then
// within one rounding). Layouts (ggml-common.h; src/gguf/dequant.ts has the CPU reference):
//   Q4_0 32/18 B: f16 d, u8 qs[16]; e < 16: lo(qs[e]), else hi(qs[e-16]); q - 8, s = d.
//   Q4_1 32/20 B: f16 d, f16 m, qs[16] as Q4_0; s = d, offset -m (x = q d + m).
//   Q5_0 32/22 B: f16 d, u32 qh, qs[16]; 5th bit of e = bit e of qh; q - 16, s = d.
//   Q8_0 32/34 B: f16 d, i8 qs[32]; s = d.
//   Q4_K 256/144 B: f16 d, f16 dmin, u8 scales[12] (6-bit scale/min pairs, get_scale_min_k4: kHead),
//        u8 qs[128]; sub-block j (32 elements) = nibble j & 1 of qs[32 (j / 2) ..]; s = d sc_j,
//        offset dmin m_j.
//   Q5_K 256/176 B: as Q4_K with u8 qh[32] at 16 (bit j of qh[l]: 5th bit of element l of
//        sub-block j), qs at 48.
//   Q6_K 256/210 B: u8 ql[128], u8 qh[64], i8 sc[16], f16 d at 208; element e: half n = e/128,
//        quarter k = (e%128)/32, l = e%32: lo 4 bits nibble k/2 of ql[64n + 32(k&1) + l], hi 2 bits
//        2k.. of qh[32n + l]; q - 32; s = f32(d sc[8n + l/16 + 2k]).
//   F16, F32: plain values; s = 1.
// Rows of Q6_K, Q4_0, Q5_0, Q8_0 need not start on a 4-byte boundary: `word` reads any offset.

struct Octet {
  a: vec4<f32>, // q of elements 0..3
  b: vec4<f32>, // q of elements 4..7
  s: f32,
  m: f32,       // element i = s * q_i - m
}

#if W_F32
const QK: u32 = 1u;
const BB: u32 = 4u;
#elif W_F16
const QK: u32 = 1u;
const BB: u32 = 2u;
#elif W_Q4_0
const QK: u32 = 32u;
const BB: u32 = 18u;
#elif W_Q4_1
const QK: u32 = 32u;
const BB: u32 = 20u;
#elif W_Q5_0
const QK: u32 = 32u;
const BB: u32 = 22u;
#elif W_Q8_0
const QK: u32 = 32u;
const BB: u32 = 34u;
#elif W_Q4_K
const QK: u32 = 256u;
const BB: u32 = 144u;
#elif W_Q5_K
const QK: u32 = 256u;
const BB: u32 = 176u;
#elif W_Q6_K
const QK: u32 = 256u;
const BB: u32 = 210u;
#endif

// Bytes of one row of K elements.
fn rowBytesOf(K: u32) -> u32 {
  return (K / QK) * BB;
}

#if WQ4
// The u32 word i of the weight.
fn wqAt(i: u32) -> u32 { return wq[i >> 2u][i & 3u]; }
// The 16 bytes at byte offset o, a multiple of 16.
fn quadAt(o: u32) -> vec4<u32> { return wq[o >> 4u]; }
#else
fn wqAt(i: u32) -> u32 { return wq[i]; }
// The 16 bytes at byte offset o, a multiple of 4.
fn quadAt(o: u32) -> vec4<u32> {
  let i = o >> 2u;
  return vec4<u32>(wq[i], wq[i + 1u], wq[i + 2u], wq[i + 3u]);
}
#endif

// The 4 bytes at byte offset o (any alignment), little-endian.
fn word(o: u32) -> u32 {
  let i = o >> 2u;
  let sh = (o & 3u) * 8u;
  let lo = wqAt(i);
  if (sh == 0u) { return lo; }
  return (lo >> sh) | (wqAt(i + 1u) << (32u - sh));
}

fn byteAt(o: u32) -> u32 {
  return (wqAt(o >> 2u) >> ((o & 3u) * 8u)) & 0xffu;
}

// The f16 at an even byte offset.
fn halfAt(o: u32) -> f32 {
  let h = unpack2x16float(wqAt(o >> 2u));
  return select(h.x, h.y, (o & 2u) != 0u);
}

override INTCVT: bool = false;

// Small integers packed one per byte become floats without shifting lanes apart (SwiftShader's
// JIT emulates a shift of vector lanes lane by lane: decoding with masks and one conversion
// measured 2-4x faster there). A `lanes` vector holds byte b's value v_b in place, v_b 256^b:
// with INTCVT (CPUs) one int->float conversion gives it exactly (an i32, so v_3 < 128 unless
// the sign is wanted); otherwise (GPUs, where that conversion is quarter rate) lanes 2, 3 move
// down 16 bits and each v_b 256^(b & 1) < 2^23 is OR-ed into the bits of 2^23, minus 2^23.
// Either way the float is v_b LANE_b; unlane() = 1 / LANE undoes it exactly
// (powers of two: a matvec folds it into x once; an x below 2^-102 would become subnormal, far
// below any tolerance).
const M8B = vec4<u32>(0xffu, 0xff00u, 0xff0000u, 0xff000000u);
const HALVES = vec4<u32>(0u, 0u, 16u, 16u);
const MAGIC = vec4<u32>(0x4b000000u);

fn lanesToF(lanes: vec4<u32>) -> vec4<f32> {
  if (INTCVT) { return vec4<f32>(bitcast<vec4<i32>>(lanes)); }
  return bitcast<vec4<f32>>((lanes >> HALVES) | MAGIC) - vec4<f32>(8388608.0);
}

// The 4 bytes of v (each < 128) times LANE.
fn byteLanes(v: u32) -> vec4<f32> {
  return lanesToF(vec4<u32>(v) & M8B);
}

// The 4 signed bytes of w times LANE: the sign bits flipped make each byte v + 128, minus 128
// after (with INTCVT byte 3 keeps its sign: the i32's own).
fn i8Lanes(w: u32) -> vec4<f32> {
  if (INTCVT) { return byteLanes(w ^ 0x00808080u) - vec4<f32>(128.0, 32768.0, 8388608.0, 0.0); }
  return byteLanes(w ^ 0x80808080u) - vec4<f32>(128.0, 32768.0, 128.0, 32768.0);
}

fn unlane() -> vec4<f32> {
#if W_F32 || W_F16
  return vec4<f32>(1.0);
#else
  if (INTCVT) { return vec4<f32>(1.0, 1.0 / 256.0, 1.0 / 65536.0, 1.0 / 16777216.0); }
  return vec4<f32>(1.0, 1.0 / 256.0, 1.0, 1.0 / 256.0);
#endif
}

// Bits 0..3 of each byte of w >> sh (sh = 0 or 4: the low or high nibbles).
fn nibbles(w: u32, sh: u32) -> u32 {
  return (w >> sh) & 0x0f0f0f0fu;
}

// 4 bits b0..b3 of v spread to bit 4 of bytes 0..3 (a 5th quant bit): v 0x204081 puts bit i at
// bit 8i (the four copies do not overlap, so no carries).
fn spread4(v: u32) -> u32 {
  return ((v * 0x204081u) & 0x01010101u) << 4u;
}

#if W_Q4_K || W_Q5_K
// The 16-byte head of a Q4_K / Q5_K block: d, dmin and the 8 6-bit scale/min pairs of ggml's
// get_scale_min_k4 unpacked word-wise, one byte each: sc.x = scales 0..3, sc.y = 4..7, mn the
// same for the mins. Scale bytes s[0..11] in words s0, s1, s2: sc j < 4 = s[j] & 63, m j < 4 =
// s[j + 4] & 63; sc 4 + j = (s[8 + j] & 15) | (s[j] >> 6) << 4, m 4 + j = (s[8 + j] >> 4) |
// (s[j + 4] >> 6) << 4 (the shifts move bits across bytes; the masks drop what crossed).
struct KHead {
  d: f32,
  dmin: f32,
  sc: vec2<u32>,
  mn: vec2<u32>,
}

fn kHead(o: u32) -> KHead {
  let w = quadAt(o);
  let dm = unpack2x16float(w.x);
  let s0 = w.y;
  let s1 = w.z;
  let s2 = w.w;
  return KHead(dm.x, dm.y,
               vec2<u32>(s0 & 0x3f3f3f3fu, (s2 & 0x0f0f0f0fu) | ((s0 >> 2u) & 0x30303030u)),
               vec2<u32>(s1 & 0x3f3f3f3fu, ((s2 >> 4u) & 0x0f0f0f0fu) | ((s1 >> 2u) & 0x30303030u)));
}

// Sub-blocks 2q and 2q + 1 (q < 4): (d sc_2q, d sc_2q+1, dmin m_2q, dmin m_2q+1), each one f32
// product as ggml forms it.
fn kScales(h: KHead, q: u32) -> vec4<f32> {
  let odd = (q & 1u) == 1u;
  let s = select(h.sc.x, h.sc.y, q >= 2u);
  let m = select(h.mn.x, h.mn.y, q >= 2u);
  // Bytes 0, 1 (or 2, 3) masked in place, no shifts: v 256^b exactly (< 2^30: a positive i32),
  // 256^-b folded into d and dmin first (exact), so each product is d v rounded once.
  let lo = select(0xffu, 0xff0000u, odd);
  let hi = select(0xff00u, 0xff000000u, odd);
  let f = select(vec2<f32>(1.0, 1.0 / 256.0), vec2<f32>(1.0 / 65536.0, 1.0 / 16777216.0), odd);
  let v = vec4<f32>(vec4<i32>(bitcast<i32>(s & lo), bitcast<i32>(s & hi), bitcast<i32>(m & lo), bitcast<i32>(m & hi)));
  return vec4<f32>(h.d * f.x, h.d * f.y, h.dmin * f.x, h.dmin * f.y) * v;
}
#endif

// Rows start on 4-byte boundaries and blocks are whole words (F32, F16 with K % 8 == 0, Q4_1,
// Q4_K, Q5_K): plain word loads, no realignment.
#if W_F32 || W_F16 || W_Q4_1 || W_Q4_K || W_Q5_K
fn wordA(o: u32) -> u32 { return wqAt(o >> 2u); }
#else
fn wordA(o: u32) -> u32 { return word(o); }
#endif

// Scales of the 32-element group g (octets 4g .. 4g + 3) of the row at rowBase: x = scale of
// octets 4g, 4g + 1; y = scale of octets 4g + 2, 4g + 3 (they differ only for Q6_K, one scale
// per 16); z = the offset m (element = s q - m). Decoded once per 32 elements by the matvec.
fn groupScale(rowBase: u32, g: u32) -> vec3<f32> {
#if W_F32 || W_F16
  return vec3<f32>(1.0, 1.0, 0.0);
#elif W_Q8_0 || W_Q4_0 || W_Q5_0
  let d = halfAt(rowBase + g * BB);
  return vec3<f32>(d, d, 0.0);
#elif W_Q4_1
  let base = rowBase + g * BB;
  let d = halfAt(base);
  return vec3<f32>(d, d, -halfAt(base + 2u));
#elif W_Q4_K || W_Q5_K
  let s = kScales(kHead(rowBase + (g >> 3u) * BB), (g & 7u) >> 1u);
  let odd = (g & 1u) == 1u;
  let sc = select(s.x, s.y, odd);
  return vec3<f32>(sc, sc, select(s.z, s.w, odd));
#elif W_Q6_K
  let base = rowBase + (g >> 3u) * BB;
  let i = (g & 7u) * 4u;    // first octet of the group within the block
  let n = i >> 4u;
  let k = (i >> 2u) & 3u;
  let o = base + 192u + 8u * n + 2u * k;
  let d = halfAt(base + 208u);
  let sc = vec2<f32>(vec2<i32>(bitcast<i32>(byteAt(o) << 24u), bitcast<i32>(byteAt(o + 1u) << 24u)) >> vec2<u32>(24u));
  return vec3<f32>(d * sc.x, d * sc.y, 0.0);
#endif
}

struct Quants {
  a: vec4<f32>, // elements 0..3 of the octet
  b: vec4<f32>, // elements 4..7
}

// The quantised values q of octet c (offsets such as q - 8 applied) times LANE: as byteLanes
// gives them, so a matvec multiplies x by unlane() once instead of each q (F32, F16: plain).
fn octetL(rowBase: u32, c: u32) -> Quants {
#if W_F32
  let o = rowBase + c * 32u;
  return Quants(bitcast<vec4<f32>>(vec4<u32>(wordA(o), wordA(o + 4u), wordA(o + 8u), wordA(o + 12u))),
                bitcast<vec4<f32>>(vec4<u32>(wordA(o + 16u), wordA(o + 20u), wordA(o + 24u), wordA(o + 28u))));
#elif W_F16
  let o = rowBase + c * 16u;
  return Quants(vec4<f32>(unpack2x16float(wordA(o)), unpack2x16float(wordA(o + 4u))),
                vec4<f32>(unpack2x16float(wordA(o + 8u)), unpack2x16float(wordA(o + 12u))));
#elif W_Q8_0
  let o = rowBase + (c >> 2u) * BB + 2u + (c & 3u) * 8u;
  return Quants(i8Lanes(wordA(o)), i8Lanes(wordA(o + 4u)));
#elif W_Q4_0 || W_Q4_1
  let base = rowBase + (c >> 2u) * BB;
  let i = c & 3u;
  let sh = (i >> 1u) * 4u;
#if W_Q4_0
  let o = base + 2u + (i & 1u) * 8u;
  let bias = 8.0 / unlane(); // q's offset in lane units (exact: powers of two)
  return Quants(byteLanes(nibbles(wordA(o), sh)) - bias, byteLanes(nibbles(wordA(o + 4u), sh)) - bias);
#else
  let o = base + 4u + (i & 1u) * 8u;
  return Quants(byteLanes(nibbles(wordA(o), sh)), byteLanes(nibbles(wordA(o + 4u), sh)));
#endif
#elif W_Q5_0
  let base = rowBase + (c >> 2u) * BB;
  let i = c & 3u;
  let sh = (i >> 1u) * 4u;
  let o = base + 6u + (i & 1u) * 8u;
  // 5th bits of elements 8i .. 8i + 7: byte i of qh.
  let hb = (wordA(base + 2u) >> (8u * i)) & 0xffu;
  let bias = 16.0 / unlane(); // q's offset in lane units (exact: powers of two)
  return Quants(byteLanes(nibbles(wordA(o), sh) | spread4(hb & 0xfu)) - bias,
                byteLanes(nibbles(wordA(o + 4u), sh) | spread4(hb >> 4u)) - bias);
#elif W_Q4_K || W_Q5_K
  let base = rowBase + (c >> 5u) * BB;
  let i = c & 31u;
  let j = i >> 2u;          // sub-block of 32
  let r = i & 3u;           // octet within it
  let sh = (j & 1u) * 4u;
#if W_Q4_K
  let o = base + 16u + (j >> 1u) * 32u + r * 8u;
  return Quants(byteLanes(nibbles(wordA(o), sh)), byteLanes(nibbles(wordA(o + 4u), sh)));
#else
  let o = base + 48u + (j >> 1u) * 32u + r * 8u;
  let h = base + 16u + r * 8u;
  // The 5th bit of element l of sub-block j: bit j of qh[l], moved to bit 4 of its byte.
  return Quants(byteLanes(nibbles(wordA(o), sh) | (((wordA(h) >> j) & 0x01010101u) << 4u)),
                byteLanes(nibbles(wordA(o + 4u), sh) | (((wordA(h + 4u) >> j) & 0x01010101u) << 4u)));
#endif
#elif W_Q6_K
  let base = rowBase + (c >> 5u) * BB;
  let i = c & 31u;
  let n = i >> 4u;          // half of 128
  let k = (i >> 2u) & 3u;   // quarter of 32 within it
  let r = i & 3u;           // octet within the quarter
  let o = base + 64u * n + 32u * (k & 1u) + 8u * r;
  let sh = (k >> 1u) * 4u;
  let h = base + 128u + 32u * n + 8u * r;
  let bias = 32.0 / unlane(); // q's offset in lane units (exact: powers of two)
  // The 2 high bits of quarter k: bits 2k, 2k + 1 of each qh byte, moved to bits 4, 5.
  return Quants(byteLanes(nibbles(wordA(o), sh) | (((wordA(h) >> (2u * k)) & 0x03030303u) << 4u)) - bias,
                byteLanes(nibbles(wordA(o + 4u), sh) | (((wordA(h + 4u) >> (2u * k)) & 0x03030303u) << 4u)) - bias);
#endif
}

// The quantised values q of octet c (offsets such as q - 8 applied).
fn octetQ(rowBase: u32, c: u32) -> Quants {
  let q = octetL(rowBase, c);
  let u = unlane();
  return Quants(q.a * u, q.b * u);
}

// Octet c (elements 8c .. 8c + 7) of the row whose bytes start at rowBase.
fn octet(rowBase: u32, c: u32) -> Octet {
  let q = octetQ(rowBase, c);
  let g = groupScale(rowBase, c >> 2u);
  return Octet(q.a, q.b, select(g.x, g.y, (c & 3u) >= 2u), g.z);
}
