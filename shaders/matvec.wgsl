// matvec: y[yOffset + n] = sum_k W[n, k] x[k] for the rows n < rows of one weight part (decode,
// batch 1, dense f32 or f16 weights). W in PyTorch Linear layout [out, in], read four depths at a
// time: vec4<f32>, or with WEIGHT_F16 four halves packed in vec2<u32> (unpack2x16float, so f16
// weights work without shader-f16). K % 4 == 0.
// GATE_UP (decode fusion of a gated MLP's first half): a second weight w1 of the same shape and
// y[yOffset + n] = silu((W x)[n]) * (W1 x)[n], silu(g) = g / (1 + e^-g) in f32 with the formula
// of silu_mul.wgsl, each sum formed exactly as without GATE_UP (so in f32 the result equals
// matvec, matvec, silu_mul bit for bit).
// Bindings: 0 w [rows, K/4] vec4 (read), 1 x [K/4] vec4 act (read), 2 y [>= yOffset + rows] act
//           (read_write), GATE_UP: 3 w1 [rows, K/4] vec4 (read); then params { K4, rows, yOffset }.
// TPR threads per row: TPR == 1 -> each thread streams a whole row, no reduction (fastest on CPU
// adapters, where a workgroup is a loop); TPR > 1 -> TPR threads stride over K and reduce in
// workgroup memory (GPUs: coalesced loads). Accumulation is f32.
// Dispatch: ceil(rows / (WG / TPR)) workgroups spread over x/y by grid().
#if F16
alias act = f16;
#else
alias act = f32;
#endif

struct Params {
  K4: u32,
  rows: u32,
  yOffset: u32,
}

// Four weights along K: four halves packed in two u32 (WEIGHT_F16) or a vec4<f32>.
#if WEIGHT_F16
alias wvec = vec2<u32>;
#else
alias wvec = vec4<f32>;
#endif

@group(0) @binding(0) var<storage, read> w: array<wvec>;
@group(0) @binding(1) var<storage, read> x: array<vec4<act>>;
@group(0) @binding(2) var<storage, read_write> y: array<act>;
#if GATE_UP
@group(0) @binding(3) var<storage, read> w1: array<wvec>;
@group(0) @binding(4) var<uniform> p: Params;
#else
@group(0) @binding(3) var<uniform> p: Params;
#endif

override WG: u32 = 64;
override TPR: u32 = 1;

var<workgroup> partial: array<f32, WG>;

// Element i (of [rows, K/4]) of weight m (0: w, 1: w1); m is a constant at every call site.
fn wraw(m: u32, i: u32) -> wvec {
#if GATE_UP
  if (m == 1u) { return w1[i]; }
#endif
  return w[i];
}

fn wrow(m: u32, i: u32) -> vec4<f32> {
  let h = wraw(m, i);
#if WEIGHT_F16
  return vec4<f32>(unpack2x16float(h.x), unpack2x16float(h.y));
#else
  return h;
#endif
}

// Partial sum of lane `lane` (of TPR) over row `row` of weight m: depths lane, lane + TPR, ...
fn rowDot(m: u32, row: u32, lane: u32) -> f32 {
  var acc = 0.0;
  if (row < p.rows) {
    let base = row * p.K4;
    for (var k = lane; k < p.K4; k += TPR) {
      acc += dot(wrow(m, base + k), vec4<f32>(x[k]));
    }
  }
  return acc;
}

// Sum of the TPR lanes' acc, valid in lane 0 (TPR > 1; call in uniform control flow). Ends with
// a barrier so that `partial` can be reused at once.
fn rowSum(acc: f32, lid: u32, lane: u32) -> f32 {
  partial[lid] = acc;
  workgroupBarrier();
  for (var s = TPR / 2u; s > 0u; s >>= 1u) {
    if (lane < s) {
      partial[lid] += partial[lid + s];
    }
    workgroupBarrier();
  }
  let sum = partial[lid];
  workgroupBarrier();
  return sum;
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

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let rowsPerWg = WG / TPR;
  let row = (wid.x + wid.y * nwg.x) * rowsPerWg + lid / TPR;
  let lane = lid % TPR;
  let acc = rowDot(0u, row, lane);
#if GATE_UP
  let acc1 = rowDot(1u, row, lane);
#else
  let acc1 = 0.0;
#endif
  if (TPR == 1u) {
    if (row < p.rows) {
      y[p.yOffset + row] = outVal(acc, acc1);
    }
    return;
  }
  let sum = rowSum(acc, lid, lane);
#if GATE_UP
  let sum1 = rowSum(acc1, lid, lane);
#else
  let sum1 = 0.0;
#endif
  if (lane == 0u && row < p.rows) {
    y[p.yOffset + row] = outVal(sum, sum1);
  }
}
