/**
 * Activation vectors for kernel tests: upload an f32 vector as f32 or f16 (shader-f16) and read a
 * tensor back as f32 whatever its dtype.
 */
import type { Gpu } from '../../src/gpu/device.js';
import { Tensor } from '../../src/gpu/tensor.js';
import { fromF16, toF16 } from '../../src/util/f16.js';

export function upload(gpu: Gpu, v: Float32Array, dtype: 'f32' | 'f16', label: string): Tensor {
  return Tensor.from(gpu, dtype === 'f16' ? toF16(v) : v, [v.length], dtype, label);
}

export async function readF32(t: Tensor): Promise<Float32Array> {
  const raw = await t.read();
  return t.dtype === 'f16' ? fromF16(raw as Uint16Array) : (raw as Float32Array);
}
