// attention_prefill_io: what the prefill attention kernels share (attention_prefill.wgsl, SIMT,
// and attention_prefill_subgroup_matrix.wgsl), appended to each by src/kernels/attention.ts: the
// params, the bindings and the K/V loads (always f32 out, whatever the storage).
// Bindings (indices in vec4 units; head_dim = 4 * D4, D4 an override of each kernel):
//   0 q   act: row t, head h at q_off4 + t * q_stride4 + h * d4            ([T, n_heads, head_dim])
//   1 k   act: key j, kv head g at k_off4 + j * k_stride4 + g * d4   ([n_keys, n_kv, head_dim], the
//         KV cache [max_ctx, n_kv, head_dim], or the k part of a fused qkv row)
//   2 v   act: same with v_off4, v_stride4
//   KV_F16 (k and v of a KV cache stored as f16 bits, on any adapter): k and v are vec2<u32>
//          arrays, one element = 4 packed halves (unpack2x16float), indexed in the same vec4 units.
//   3 out act [T, n_heads, head_dim] (read_write)
//   4 seg [T] vec2<u32> (start, end) key range per query row (SEGMENTS; else unused)
//   5 params
// act: f16 with ACT_F16, else f32.
#if ACT_F16
alias act = f16;
#else
alias act = f32;
#endif

struct Params {
  n_q: u32,
  n_heads: u32,
  n_kv: u32,
  q_stride4: u32,
  q_off4: u32,
  k_stride4: u32,
  k_off4: u32,
  v_stride4: u32,
  v_off4: u32,
  pos0: u32,
  scale: f32,
}

@group(0) @binding(0) var<storage, read> q: array<vec4<act>>;
#if KV_F16
@group(0) @binding(1) var<storage, read> k: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read> v: array<vec2<u32>>;

fn unpack4(h: vec2<u32>) -> vec4<f32> {
  return vec4<f32>(unpack2x16float(h.x), unpack2x16float(h.y));
}
fn load_k(i: u32) -> vec4<f32> {
  return unpack4(k[i]);
}
fn load_v(i: u32) -> vec4<f32> {
  return unpack4(v[i]);
}
#else
@group(0) @binding(1) var<storage, read> k: array<vec4<act>>;
@group(0) @binding(2) var<storage, read> v: array<vec4<act>>;

fn load_k(i: u32) -> vec4<f32> {
  return vec4<f32>(k[i]);
}
fn load_v(i: u32) -> vec4<f32> {
  return vec4<f32>(v[i]);
}
#endif
@group(0) @binding(3) var<storage, read_write> out: array<vec4<act>>;
@group(0) @binding(4) var<storage, read> seg: array<vec2<u32>>;
@group(0) @binding(5) var<uniform> p: Params;
