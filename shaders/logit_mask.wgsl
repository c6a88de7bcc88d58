// logit_mask: grammar-constrained decoding; every token whose bit is 0 in the allowed-token mask
// gets the lowest finite logit, so argmax, top-k and top-p never pick it.
// Bindings: 0 logits [V] act (read_write), 1 allowed [ceil(V / 32)] u32 (read: bit id & 31 of
// word id >> 5, 1 = allowed), 2 params { V }.
// Dispatch: ceil(V / WG) workgroups over x/y by grid(); act = f16 when F16 else f32.
#if F16
alias act = f16;
const LOWEST: act = -65504.0h;
#else
alias act = f32;
const LOWEST: act = -3.4028234663852886e38;
#endif

struct Params { V: u32 }

@group(0) @binding(0) var<storage, read_write> logits: array<act>;
@group(0) @binding(1) var<storage, read> allowed: array<u32>;
@group(0) @binding(2) var<uniform> p: Params;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i < p.V && ((allowed[i >> 5u] >> (i & 31u)) & 1u) == 0u) {
    logits[i] = LOWEST;
  }
}
