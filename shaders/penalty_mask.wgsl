// penalty_mask: the set of token ids the repetition penalty applies to, as a bitmask over the
// vocabulary: bit (id % 32) of mask[id / 32] is set for every id in ids[0..n). A set, so an id
// that occurs several times is penalised once (Hugging Face gathers, penalises, scatters).
// Ids >= V are ignored. Read by argmax.wgsl and sample_topk.wgsl in the same compute pass.
// Bindings: 0 ids [n] u32 (read), 1 mask [ceil(V / 32)] u32 (read_write, atomic), 2 params.
// Dispatch: exactly 1 workgroup (it clears the mask, then marks; the barrier orders the two).

struct Params {
  V: u32, // vocabulary size
  n: u32, // ids to mark
}

@group(0) @binding(0) var<storage, read> ids: array<u32>;
@group(0) @binding(1) var<storage, read_write> mask: array<atomic<u32>>;
@group(0) @binding(2) var<uniform> p: Params;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  let words = (p.V + 31u) / 32u;
  for (var w = lid; w < words; w += WG) {
    atomicStore(&mask[w], 0u);
  }
  storageBarrier();
  for (var i = lid; i < p.n; i += WG) {
    let id = ids[i];
    if (id < p.V) {
      atomicOr(&mask[id >> 5u], 1u << (id & 31u));
    }
  }
}
