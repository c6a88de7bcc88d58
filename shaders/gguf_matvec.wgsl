// gguf_matvec: y[yOffset + r] = sum_k W[r, k] x[k] for the rows r of one row part of a weight
// held in a ggml block format as stored in the GGUF (decode, batch 1). The format is one define
// (W_Q4_K, ...; gguf_blocks.wgsl, appended to this file, reads the blocks): every 8 consecutive
// elements of a row share a scale s and an offset m, so a thread's dot over a group of 32 is
// s (q . x) - m sum(x) (two scales for Q6_K's halves), with the scales decoded once per group
// and sum(x) shared by the thread's 4 rows.
// Bindings:
//   0 wq [rows * rowBytes / 4] u32 (rowBytes = K / QK * BB, padded to 4), read
//   1 x  [K / 4] vec4<act>, read
//   2 y  [>= yOffset + rows] act, read_write (only this part's rows are written)
//   3 params { K, rows, yOffset }
// Work split: TPR threads share a block of 4 consecutive rows (one vec4 accumulator, each x
// group loaded once for 4 rows) and stride over the 32-element groups g = t, t + TPR, ... of
// those rows. TPR = 1: a
// thread streams 4 whole rows with no reduction (CPU adapters); else a shared-memory reduction.
// A workgroup of WG threads holds 4 * WG / TPR rows. Rows past the end read the last row and
// are not written. Dispatch: ceil(rows / (4 * WG / TPR)) workgroups spread over x/y by grid().
// act = f16 when F16 else f32; accumulation is f32 either way. K is a multiple of 32 (and of
// the format's block).
#if F16
alias act = f16;
alias act4 = vec4<f16>;
#else
alias act = f32;
alias act4 = vec4<f32>;
#endif

struct Params { K: u32, rows: u32, yOffset: u32 }

@group(0) @binding(0) var<storage, read> wq: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<act4>;
@group(0) @binding(2) var<storage, read_write> y: array<act>;
@group(0) @binding(3) var<uniform> p: Params;

override WG: u32 = 128;
override TPR: u32 = 32;

var<workgroup> partial: array<vec4<f32>, WG>;

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

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let block = lid / TPR;
  let t = lid % TPR;
  let wg = wid.x + wid.y * nwg.x;
  let row = (wg * (WG / TPR) + block) * 4u;
  let last = max(p.rows, 1u) - 1u;
  let rb = rowBytesOf(p.K);
  let b = vec4<u32>(min(row, last), min(row + 1u, last), min(row + 2u, last), min(row + 3u, last)) * rb;
  let groups = p.K / 32u;
  var acc = vec4<f32>(0.0);
  for (var g = t; g < groups; g += TPR) {
    let xo = 8u * g;
    let x0 = vec4<f32>(x[xo]);
    let x1 = vec4<f32>(x[xo + 1u]);
    let x2 = vec4<f32>(x[xo + 2u]);
    let x3 = vec4<f32>(x[xo + 3u]);
    let x4 = vec4<f32>(x[xo + 4u]);
    let x5 = vec4<f32>(x[xo + 5u]);
    let x6 = vec4<f32>(x[xo + 6u]);
    let x7 = vec4<f32>(x[xo + 7u]);
    let xs = dot((x0 + x1) + (x2 + x3) + ((x4 + x5) + (x6 + x7)), vec4<f32>(1.0));
    acc += vec4<f32>(groupDot(b.x, g, x0, x1, x2, x3, x4, x5, x6, x7, xs), groupDot(b.y, g, x0, x1, x2, x3, x4, x5, x6, x7, xs),
                     groupDot(b.z, g, x0, x1, x2, x3, x4, x5, x6, x7, xs), groupDot(b.w, g, x0, x1, x2, x3, x4, x5, x6, x7, xs));
  }
  if (TPR == 1u) {
    for (var j = 0u; j < 4u; j++) {
      if (row + j < p.rows) { y[p.yOffset + row + j] = act(acc[j]); }
    }
    return;
  }
  partial[lid] = acc;
  workgroupBarrier();
  // Thread t < 4 of the block sums the block's TPR partials of row row + t.
  if (t < 4u && row + t < p.rows) {
    var sum = 0.0;
    let first = block * TPR;
    for (var i = 0u; i < TPR; i++) { sum += partial[first + i][t]; }
    y[p.yOffset + row + t] = act(sum);
  }
}
