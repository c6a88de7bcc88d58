// gguf_matvec: y[yOffset + r] = sum_k W[r, k] x[k] for the rows r of one row part of a weight
// held in a ggml block format as stored in the GGUF (decode, batch 1). The format is one define
// (W_Q4_K, ...; gguf_blocks.wgsl, appended to this file, reads the blocks): every 8 consecutive
// elements of a row share a scale s and an offset m, so a thread's dot over an octet is
// s * (q . x) - m * sum(x), and sum(x) is shared by the thread's 4 rows.
// Bindings:
//   0 wq [rows * rowBytes / 4] u32 (rowBytes = K / QK * BB, padded to 4), read
//   1 x  [K / 4] vec4<act>, read
//   2 y  [>= yOffset + rows] act, read_write (only this part's rows are written)
//   3 params { K, rows, yOffset }
// Work split: TPR threads share a block of 4 consecutive rows (one vec4 accumulator, each x
// octet loaded once for 4 rows) and stride over the octets c = t, t + TPR, ... of those rows, so
// with TPR = 32 a warp reads 32 consecutive octets (one Q4_K block) of each row. TPR = 1: a
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

fn octetDot(rowBase: u32, c: u32, xa: vec4<f32>, xb: vec4<f32>, xs: f32) -> f32 {
  let o = octet(rowBase, c);
  return o.s * (dot(o.a, xa) + dot(o.b, xb)) - o.m * xs;
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
  let octets = p.K / 8u;
  var acc = vec4<f32>(0.0);
  for (var c = t; c < octets; c += TPR) {
    let xa = vec4<f32>(x[2u * c]);
    let xb = vec4<f32>(x[2u * c + 1u]);
    let xs = dot(xa + xb, vec4<f32>(1.0));
    acc += vec4<f32>(octetDot(b.x, c, xa, xb, xs), octetDot(b.y, c, xa, xb, xs),
                     octetDot(b.z, c, xa, xb, xs), octetDot(b.w, c, xa, xb, xs));
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
