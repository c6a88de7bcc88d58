// fill_random: fills a buffer with deterministic pseudo-random words on the GPU (benchmarks and
// large-shape tests need gigabytes of weights without sending them over the bus).
//   default: out[i] = hash(seed, i) (random bits: q4 nibbles)
//   F32:     out[i] = bitcast<u32>(scale * (2u - 1)), u uniform in [0, 1)
//   F16PAIR: out[i] = pack2x16float(scale * (2u - 1), scale * (2u' - 1)) (two f16 values)
// Bindings: 0 out [n] u32 (read_write), 1 params { n, seed, scale, offset }.
// Dispatch: ceil(n / WG) workgroups spread over x/y by grid(). Element i hashes (offset + i), so
// filling a buffer in pieces gives the same words as in one go.

struct Params {
  n: u32,
  seed: u32,
  scale: f32,
  offset: u32,
}

@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@group(0) @binding(1) var<uniform> p: Params;

override WG: u32 = 256;

// PCG-style integer hash (Jarzynski & Olano 2020).
fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

fn unit(h: u32) -> f32 {
  return f32(h >> 8u) * (1.0 / 16777216.0);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= p.n) {
    return;
  }
  let h = pcg(pcg(p.offset + i) ^ p.seed);
#if F32
  out[i] = bitcast<u32>(p.scale * (2.0 * unit(h) - 1.0));
#elif F16PAIR
  let h2 = pcg(h ^ 0x9e3779b9u);
  out[i] = pack2x16float(vec2<f32>(p.scale * (2.0 * unit(h) - 1.0), p.scale * (2.0 * unit(h2) - 1.0)));
#else
  out[i] = h;
#endif
}
