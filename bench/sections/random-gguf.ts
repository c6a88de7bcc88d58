/**
 * A GGUF pair at any config's shapes that exists only as bytes made when read: llama.cpp's Q4_K_M
 * type mix (Q4_K linears and token embedding; Q6_K lm_head, and Q6_K attn_v / ffn_down on the
 * layers its `use_more_bits` rule picks: the first and last eighth and every third between, half
 * of Pixtral-12B's 40), F32 norms, an F16 vision tower and projector; random quants with small,
 * finite scales (about 1 / sqrt(fan-in) per weight, as `RandomWeights`). Loaded through the real
 * GGUF path (`GgufWeights.upload`: row order, packing of q|k|v and gate|up, the decode fusions),
 * so the e2e bench can time a community Q4_K_M file at the real shapes without one. The numbers
 * it produces are timings, not answers.
 */
import type { ModelConfig } from '../../src/config.js';
import type { GgufModel, GgufTensorSource } from '../../src/gguf/mapping.js';
import type { ByteSource } from '../../src/gguf/source.js';
import { blockShape, GGML_TYPE } from '../../src/gguf/types.js';
import { expectedTensors } from '../../src/weights/tensor-set.js';

type Stored = 'F32' | 'F16' | 'Q4_K' | 'Q6_K';

/** llama.cpp's use_more_bits(i_layer, n_layers) (integer division, as in llama-quant.cpp). */
export function useMoreBits(i: number, n: number): boolean {
  const e = Math.floor(n / 8);
  return i < e || i >= Math.floor((7 * n) / 8) || (i - e) % 3 === 2;
}

/** The f16 bits of 2^e, -24 <= e <= 15 (subnormal below -14). */
const pow2F16 = (e: number) => (e >= -14 ? (15 + e) << 10 : 1 << (e + 24));

/**
 * `cfg`'s tensors as a Q4_K_M pair in one virtual file (text and mmproj share it). Run layer j
 * stands for layer `realLayers[j]` of a model of `realCount` layers (its types follow that layer).
 */
export function randomQ4KM(cfg: ModelConfig, realLayers: readonly number[], realCount: number): { model: GgufModel; source: ByteSource } {
  const tensors: (GgufTensorSource & { stored: Stored; cols: number })[] = [];
  let offset = 0;
  for (const t of expectedTensors(cfg)) {
    if (t.optional && t.role === 'lm-head') continue;
    const layer = /^language_model\.model\.layers\.(\d+)\./.exec(t.name);
    const heavy = layer ? useMoreBits(realLayers[Number(layer[1])] ?? 0, realCount) : false;
    const stored: Stored =
      t.role === 'norm' || t.role === 'bias' ? 'F32'
      : t.role === 'vision' ? 'F16'
      : t.role === 'lm-head' ? 'Q6_K'
      : heavy && /(v_proj|down_proj)\.weight$/.test(t.name) ? 'Q6_K'
      : 'Q4_K';
    const cols = t.shape.slice(1).reduce((a, b) => a * b, 1);
    const n = t.shape.reduce((a, b) => a * b, 1);
    const b = blockShape(GGML_TYPE[stored])!;
    const byteLength = (n / b.elems) * b.bytes;
    const vision = t.role === 'vision' || t.name.startsWith('vision_tower.') || t.name.startsWith('multi_modal_projector.');
    tensors.push({
      name: t.name, shape: t.shape, file: vision ? 'mmproj' : 'text', stored, cols,
      info: { name: t.name, shape: [...t.shape].reverse(), type: GGML_TYPE[stored], typeName: stored, offset, byteLength },
    });
    offset += Math.ceil(byteLength / 32) * 32;
  }
  const size = offset;
  const source: ByteSource = {
    name: 'random-q4_k_m.gguf',
    size: async () => size,
    async read(from, length) {
      const out = new Uint8Array(Math.max(0, Math.min(length, size - from)));
      const words = new Uint32Array(out.buffer, 0, out.byteLength >> 2);
      let x = (from * 2654435761 + 1) >>> 0 || 1;
      for (let i = 0; i < words.length; i++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        words[i] = x >>> 0;
      }
      const view = new DataView(out.buffer);
      const end = from + out.byteLength;
      for (const t of tensors) {
        const t0 = t.info.offset;
        const t1 = t0 + t.info.byteLength;
        if (t1 <= from || t0 >= end) continue;
        // Weights ~ 2^e with 2^e ~ 1 / sqrt(fan-in); norms ~ 1.
        const e = -Math.round(Math.log2(Math.sqrt(t.cols)));
        const put16 = (at: number, bits: number) => {
          if (at >= from && at + 2 <= end) view.setUint16(at - from, bits, true);
        };
        if (t.stored === 'F32') {
          for (let at = Math.max(t0, from); at < Math.min(t1, end); at += 4) view.setFloat32(at - from, 1 + (view.getUint8(at - from) - 128) / 512, true);
        } else if (t.stored === 'F16') {
          // Random sign and mantissa, exponent fixed: |w| in [2^e, 2^(e+1)).
          for (let at = Math.max(t0, from); at < Math.min(t1, end); at += 2) put16(at, (view.getUint16(at - from, true) & 0x83ff) | pow2F16(e));
        } else {
          // The block's f16 scales: Q4_K d, dmin at bytes 0, 2 (w = d sc q - dmin m, sc, m < 64,
          // q < 16: sc q ~ 2^8); Q6_K d at byte 208 (w = d sc (q - 32), |sc| < 128: ~ 2^10).
          const bb = t.stored === 'Q4_K' ? 144 : 210;
          const first = Math.max(0, Math.floor((from - t0) / bb));
          const last = Math.min(t.info.byteLength / bb, Math.ceil((end - t0) / bb));
          for (let k = first; k < last; k++) {
            const at = t0 + k * bb;
            if (t.stored === 'Q4_K') {
              put16(at, pow2F16(Math.max(-24, e - 8)));
              put16(at + 2, pow2F16(Math.max(-24, e - 8)));
            } else {
              put16(at + 208, pow2F16(Math.max(-24, e - 10)));
            }
          }
        }
      }
      return out;
    },
  };
  return { model: { config: cfg, tensors: tensors.map(({ stored: _s, cols: _c, ...t }) => t) }, source };
}
