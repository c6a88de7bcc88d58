// matvec_common: what the decode matrix-vector kernels share (q4_matvec.wgsl, gguf_matvec.wgsl;
// appended to each): x as the projections see it (the RMSNorm fold, NORM), the workgroup
// reduction of a 4-row block's partial sums, and the epilogue (GATE_UP's SiLU product, the
// RESIDUAL add). The including shader declares act / act4, x [K / 4] act4, y [..] act, the norm
// weight nw (NORM: f32 [K], or with NORM_F16 f16 pairs packed in u32 [K / 2]), params p with K
// (and eps with NORM), and the overrides WG and TPR.
//   NORM: x is the residual stream and the RMSNorm that feeds the projection is folded in: every
//     workgroup first recomputes 1/rms over the K floats of x (a workgroup reduction laid out
//     exactly as rmsnorm.wgsl's: 256 strided lanes, then the same tree), and reads x_k as
//     act(x_k * inv * nw_k), rmsnorm.wgsl's formula and rounding, so the sums equal rmsnorm
//     followed by the plain kernel bit for bit. K floats per workgroup (20 KB at Nemo) cost less
//     than a dispatch and a barrier.
//   GATE_UP: y = silu(a) * b for the gate's sum a and the up's sum b, silu(g) = g / (1 + e^-g) in
//     f32, the formula of silu_mul.wgsl (so the result equals matvec, matvec, silu_mul in f32).
//   RESIDUAL: y = y + act(sum): the residual add of the o- and down-projections as the epilogue
//     (the same two roundings as a matvec into scratch followed by add.wgsl).

// One vec4 (4 rows) per thread; the SUBGROUPS path uses only the first WG / subgroup_size.
var<workgroup> partial: array<vec4<f32>, WG>;

#if NORM
// The number of lanes of rmsnorm.wgsl's reduction (its WG): the fused sum of squares is laid
// out as if run by that many threads, so it rounds exactly as rmsnorm does.
const NORM_LANES = 256u;
var<workgroup> red: array<f32, NORM_LANES>;
// 1 / rms of x, set by normScale before any x is read.
var<private> normInv: f32;

// The norm weights of x elements 4i..4i+3.
fn nw4(i: u32) -> vec4<f32> {
#if NORM_F16
  let a = unpack2x16float(nw[2u * i]);
  let b = unpack2x16float(nw[2u * i + 1u]);
  return vec4<f32>(a.x, a.y, b.x, b.y);
#else
  return vec4<f32>(nw[4u * i], nw[4u * i + 1u], nw[4u * i + 2u], nw[4u * i + 3u]);
#endif
}

// 1 / sqrt(mean(x^2) + eps) over x [K], with rmsnorm.wgsl's sums: lane v (of NORM_LANES; thread
// lid plays lanes lid, lid + WG, ...) sums x_c^2 for c = v, v + NORM_LANES, ..., then the same
// halving tree. Call in uniform control flow.
fn normScale(lid: u32) -> f32 {
  for (var v = lid; v < NORM_LANES; v += WG) {
    var s = 0.0;
    for (var c = v; c < p.K; c += NORM_LANES) {
      let e = f32(x[c >> 2u][c & 3u]);
      s += e * e;
    }
    red[v] = s;
  }
  workgroupBarrier();
  for (var half = NORM_LANES / 2u; half > 0u; half >>= 1u) {
    for (var v = lid; v < half; v += WG) {
      red[v] += red[v + half];
    }
    workgroupBarrier();
  }
  return 1.0 / sqrt(red[0] / f32(p.K) + p.eps);
}
#endif

// x elements 4i..4i+3 as the projections see them (NORM: normed and rounded as rmsnorm stores them).
fn xAt(i: u32) -> vec4<f32> {
#if NORM
  return vec4<f32>(act4(vec4<f32>(x[i]) * normInv * nw4(i)));
#else
  return vec4<f32>(x[i]);
#endif
}

// The workgroup reduction (TPR > 1): the sum over the block's TPR threads of acc[t], for the
// threads t < 4 of each block (0 for the others). Call in uniform control flow; ends with a
// barrier so that `partial` can be reused at once.
fn blockSum(acc: vec4<f32>, lid: u32, block: u32, t: u32, sgLane: u32, sgSize: u32) -> f32 {
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
  var sum = 0.0;
  if (t < 4u) {
    let first = block * count;
    for (var i = 0u; i < count; i++) { sum += partial[first + i][t]; }
  }
  workgroupBarrier();
  return sum;
}

// Writes row i's value (RESIDUAL: adds it to what y holds, as add.wgsl would).
fn store(i: u32, v: act) {
#if RESIDUAL
  y[i] = y[i] + v;
#else
  y[i] = v;
#endif
}

// The stored output from the row's sum a (GATE_UP: the gate's) and b (GATE_UP: the up's).
fn outVal(a: f32, b: f32) -> act {
#if GATE_UP
  // e^-a overflows to +inf for a < -88: a / inf = -0, the correct limit (as silu_mul.wgsl).
  return act(a / (1.0 + exp(-a)) * b);
#else
  return act(a);
#endif
}
