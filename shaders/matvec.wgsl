// matvec: y[yOffset + n] = sum_k W[n, k] x[k] for the rows n < rows of one weight part (decode,
// batch 1, dense f32 or f16 weights). W in PyTorch Linear layout [out, in], read four depths at a
// time: vec4<f32>, or with WEIGHT_F16 four halves packed in vec2<u32> (unpack2x16float, so f16
// weights work without shader-f16). K % 4 == 0.
// Bindings: 0 w [rows, K/4] vec4 (read), 1 x [K/4] vec4 act (read), 2 y [>= yOffset + rows] act
//           (read_write), 3 params { K4, rows, yOffset }.
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

#if WEIGHT_F16
@group(0) @binding(0) var<storage, read> w: array<vec2<u32>>;
#else
@group(0) @binding(0) var<storage, read> w: array<vec4<f32>>;
#endif
@group(0) @binding(1) var<storage, read> x: array<vec4<act>>;
@group(0) @binding(2) var<storage, read_write> y: array<act>;
@group(0) @binding(3) var<uniform> p: Params;

override WG: u32 = 64;
override TPR: u32 = 1;

var<workgroup> partial: array<f32, WG>;

fn wrow(i: u32) -> vec4<f32> {
#if WEIGHT_F16
  let h = w[i];
  return vec4<f32>(unpack2x16float(h.x), unpack2x16float(h.y));
#else
  return w[i];
#endif
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let rowsPerWg = WG / TPR;
  let row = (wid.x + wid.y * nwg.x) * rowsPerWg + lid / TPR;
  let lane = lid % TPR;
  var acc = 0.0;
  if (row < p.rows) {
    let base = row * p.K4;
    for (var k = lane; k < p.K4; k += TPR) {
      acc += dot(wrow(base + k), vec4<f32>(x[k]));
    }
  }
  if (TPR == 1u) {
    if (row < p.rows) {
      y[p.yOffset + row] = act(acc);
    }
    return;
  }
  partial[lid] = acc;
  workgroupBarrier();
  for (var s = TPR / 2u; s > 0u; s >>= 1u) {
    if (lane < s) {
      partial[lid] += partial[lid + s];
    }
    workgroupBarrier();
  }
  if (lane == 0u && row < p.rows) {
    y[p.yOffset + row] = act(partial[lid]);
  }
}
