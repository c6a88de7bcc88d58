// embedding: token embedding gather, out[t, :] = table[ids[t], :], for the row part of the table
// that holds rows [rowStart, rowStart + rows). A table larger than one storage binding is split
// into row parts (splitRows) and this kernel is dispatched once per part; each dispatch writes
// only the tokens whose id falls in its part, so together they write every token exactly once.
// Out-of-range ids (id >= vocab) read nothing and get a zero row, written by the part with
// rowStart == 0.
// Bindings (Q4):  0 ids [T] u32 (read), 1 out [T, H] act (read_write),
//                 2 qweight [rows, H/8] u32 (read; nibble k%8 of word k/8, low first),
//                 3 scales [rows, H/32] f16 bits, read as u32 pairs (read), 4 params.
// Bindings (GGUF): 0 ids, 1 out, 2 wq: the part's rows in a ggml block format as stored in the
//                 GGUF (one W_<type> define; gguf_blocks.wgsl is appended and decodes them), 3 params.
// Bindings (else): 0 ids, 1 out, 2 table [rows, H] f32, or f16 bits read as u32 pairs when
//                 TF16 (works without shader-f16), 3 params.
// act = f16 when F16 else f32. Weights are dequantised as w = (q - 8) * scale (src/quant/q4.ts).
// Dispatch: ceil(T * H / WG) workgroups spread over x/y by grid(); one thread per output element.
#if F16
alias act = f16;
#else
alias act = f32;
#endif

struct Params {
  T: u32,        // tokens
  H: u32,        // hidden size (columns); a multiple of 32 for Q4
  rowStart: u32, // first vocab row held by this part
  rows: u32,     // rows in this part
  vocab: u32,    // rows of the whole table
}

@group(0) @binding(0) var<storage, read> ids: array<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<act>;
#if Q4
@group(0) @binding(2) var<storage, read> qweight: array<u32>;
@group(0) @binding(3) var<storage, read> scales: array<u32>;
@group(0) @binding(4) var<uniform> p: Params;
#elif GGUF
@group(0) @binding(2) var<storage, read> wq: array<u32>;
@group(0) @binding(3) var<uniform> p: Params;
#elif TF16
@group(0) @binding(2) var<storage, read> table: array<u32>;
@group(0) @binding(3) var<uniform> p: Params;
#else
@group(0) @binding(2) var<storage, read> table: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
#endif

override WG: u32 = 256;

// Element (r, c) of this part, r local to the part.
fn load(r: u32, c: u32) -> f32 {
#if Q4
  let q = (qweight[(r * p.H + c) >> 3u] >> (4u * (c & 7u))) & 0xfu;
  let si = r * (p.H / 32u) + c / 32u;
  let s = unpack2x16float(scales[si >> 1u])[si & 1u];
  return (f32(q) - 8.0) * s;
#elif GGUF
  // The element's octet, decoded whole (8 elements share its scale); gathers are not hot.
  let o = octet(r * rowBytesOf(p.H), c / 8u);
  return o.s * select(o.b, o.a, (c & 7u) < 4u)[c & 3u] - o.m;
#elif TF16
  let i = r * p.H + c;
  return unpack2x16float(table[i >> 1u])[i & 1u];
#else
  return table[r * p.H + c];
#endif
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= p.T * p.H) {
    return;
  }
  let t = i / p.H;
  let c = i - t * p.H;
  let id = ids[t];
  if (id >= p.vocab) {
    if (p.rowStart == 0u) {
      out[i] = act(0.0);
    }
    return;
  }
  if (id < p.rowStart || id - p.rowStart >= p.rows) {
    return;
  }
  out[i] = act(load(id - p.rowStart, c));
}
