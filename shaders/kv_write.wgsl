// kv_write: appends new key or value rows to a KV cache:
//   dst[(pos0 + t) * dst_stride4 + dst_off4 + e] = src[src_off4 + t * src_stride4 + e], e < width4.
// Recorded inside the compute pass (copyBufferToBuffer cannot be), and reads the k or v part of a
// fused qkv row directly.
//   !KV_F16: the cache has the activation dtype; a plain copy.
//   KV_F16:  the cache holds f16 bits whatever the activation dtype (no shader-f16 needed): each
//            vec4 of the source is rounded to half (pack2x16float) and stored as a vec2<u32>
//            (halves 0,1 in .x, 2,3 in .y, low half first), so indices stay in vec4 units.
// Bindings (vec4 units):
//   0 src [T, src_stride] act (read): new k or v rows, e.g. [T, n_kv, head_dim] or a fused qkv
//   1 dst cache [max_ctx, dst_stride] act, or packed f16 as vec2<u32> with KV_F16 (read_write)
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
#if KV_F16
@group(0) @binding(1) var<storage, read_write> dst: array<vec2<u32>>;
#else
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<act>>;
#endif
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
  let x = src[p.src_off4 + t * p.src_stride4 + e];
#if KV_F16
  let xf = vec4<f32>(x);
  dst[(p.pos0 + t) * p.dst_stride4 + p.dst_off4 + e] = vec2<u32>(pack2x16float(xf.xy), pack2x16float(xf.zw));
#else
  dst[(p.pos0 + t) * p.dst_stride4 + p.dst_off4 + e] = x;
#endif
}
