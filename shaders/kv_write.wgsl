// kv_write: appends new key or value rows to a KV cache (same activation dtype):
//   dst[(pos0 + t) * dst_stride4 + dst_off4 + e] = src[src_off4 + t * src_stride4 + e], e < width4.
// Recorded inside the compute pass (copyBufferToBuffer cannot be), and reads the k or v part of a
// fused qkv row directly.
// Bindings (vec4 units):
//   0 src [T, src_stride] act (read): new k or v rows, e.g. [T, n_kv, head_dim] or a fused qkv
//   1 dst cache [max_ctx, dst_stride] act (read_write)
//   2 params
// Dispatch: ceil(T * width4 / WG) workgroups spread over x/y by grid().
#if F16
alias act = f16;
#else
alias act = f32;
#endif

struct Params {
  n_tok: u32,
  width4: u32,
  src_stride4: u32,
  src_off4: u32,
  dst_stride4: u32,
  dst_off4: u32,
  pos0: u32,
}

@group(0) @binding(0) var<storage, read> src: array<vec4<act>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<act>>;
@group(0) @binding(2) var<uniform> p: Params;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= p.n_tok * p.width4) {
    return;
  }
  let t = i / p.width4;
  let e = i % p.width4;
  dst[(p.pos0 + t) * p.dst_stride4 + p.dst_off4 + e] = src[p.src_off4 + t * p.src_stride4 + e];
}
