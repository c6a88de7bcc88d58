/**
 * ggml's tensor types as GGUF stores them: the numeric ids of `ggml_type`, each type's block
 * (elements per block, bytes per block) and which of them this library can read. Sizes come from
 * ggml's `type_traits` table; a tensor's byte size is `ne0 / blockElems * blockBytes * rows`.
 */

/** `ggml_type` ids (ggml.h). Only the ones a GGUF may plausibly hold are named. */
export const GGML_TYPE = {
  F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q5_0: 6, Q5_1: 7, Q8_0: 8, Q8_1: 9,
  Q2_K: 10, Q3_K: 11, Q4_K: 12, Q5_K: 13, Q6_K: 14, Q8_K: 15,
  IQ2_XXS: 16, IQ2_XS: 17, IQ3_XXS: 18, IQ1_S: 19, IQ4_NL: 20, IQ3_S: 21, IQ2_S: 22, IQ4_XS: 23,
  I8: 24, I16: 25, I32: 26, I64: 27, F64: 28, IQ1_M: 29, BF16: 30, TQ1_0: 34, TQ2_0: 35, MXFP4: 39,
} as const;

export type GgmlTypeName = keyof typeof GGML_TYPE;

/** The types whose blocks this library dequantises (CPU reference and WGSL kernels). */
export const SUPPORTED_TYPES = ['F32', 'F16', 'Q4_0', 'Q4_1', 'Q5_0', 'Q8_0', 'Q4_K', 'Q5_K', 'Q6_K'] as const;
export type SupportedType = (typeof SUPPORTED_TYPES)[number];

export interface BlockShape {
  /** Elements per block (along ne0). */
  elems: number;
  /** Bytes per block. */
  bytes: number;
}

/** Block shapes by type id (ggml's type_traits: blck_size, type_size). */
const BLOCKS: Record<number, BlockShape> = {
  0: { elems: 1, bytes: 4 }, 1: { elems: 1, bytes: 2 },
  2: { elems: 32, bytes: 18 }, 3: { elems: 32, bytes: 20 }, 6: { elems: 32, bytes: 22 }, 7: { elems: 32, bytes: 24 },
  8: { elems: 32, bytes: 34 }, 9: { elems: 32, bytes: 36 },
  10: { elems: 256, bytes: 84 }, 11: { elems: 256, bytes: 110 }, 12: { elems: 256, bytes: 144 },
  13: { elems: 256, bytes: 176 }, 14: { elems: 256, bytes: 210 }, 15: { elems: 256, bytes: 292 },
  16: { elems: 256, bytes: 66 }, 17: { elems: 256, bytes: 74 }, 18: { elems: 256, bytes: 98 }, 19: { elems: 256, bytes: 50 },
  20: { elems: 32, bytes: 18 }, 21: { elems: 256, bytes: 110 }, 22: { elems: 256, bytes: 82 }, 23: { elems: 256, bytes: 136 },
  24: { elems: 1, bytes: 1 }, 25: { elems: 1, bytes: 2 }, 26: { elems: 1, bytes: 4 }, 27: { elems: 1, bytes: 8 },
  28: { elems: 1, bytes: 8 }, 29: { elems: 256, bytes: 56 }, 30: { elems: 1, bytes: 2 },
  34: { elems: 256, bytes: 54 }, 35: { elems: 256, bytes: 66 }, 39: { elems: 32, bytes: 17 },
};

const NAMES = new Map<number, GgmlTypeName>(Object.entries(GGML_TYPE).map(([k, v]) => [v, k as GgmlTypeName]));

/** The type's name (`Q4_K`), or `type <id>` for an id ggml does not define. */
export function typeName(id: number): string {
  return NAMES.get(id) ?? `type ${id}`;
}

/** Block shape of a type id, or undefined for an id without a known size. */
export function blockShape(id: number): BlockShape | undefined {
  return BLOCKS[id];
}

export function isSupported(name: string): name is SupportedType {
  return (SUPPORTED_TYPES as readonly string[]).includes(name);
}

/** Bytes of `rows` rows of `ne0` elements; undefined when ne0 is not a whole number of blocks. */
export function rowsBytes(id: number, ne0: number, rows: number): number | undefined {
  const b = BLOCKS[id];
  if (!b || ne0 % b.elems !== 0) return undefined;
  return (ne0 / b.elems) * b.bytes * rows;
}
