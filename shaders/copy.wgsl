// copy: dst[i] = src[i] over vec4<u32>, the bandwidth yardstick of the benchmark
// (every kernel's GB/s is reported as a fraction of this one, measured in the same run).
// Bindings: 0 src [n] vec4<u32> (read), 1 dst [n] vec4<u32> (read_write), 2 params { n }.
// Dispatch: ceil(n / WG) workgroups spread over x/y by grid().

struct Params { n: u32 }

@group(0) @binding(0) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<u32>>;
@group(0) @binding(2) var<uniform> p: Params;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i < p.n) {
    dst[i] = src[i];
  }
}
