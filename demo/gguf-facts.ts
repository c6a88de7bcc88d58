/**
 * What the demo says about a llama.cpp GGUF pair before downloading a weight byte: from the two
 * headers alone (read with Range requests, or from picked files in place), the architecture, the
 * quant mix by bytes ("Q4_K 62%, Q6_K 10%, F32 1%"), the total size, the vision tower, and whether
 * it fits this adapter (the same estimate as for converted models, `capabilities.ts`), with the
 * reason when it does not. Pure (no DOM): the loader renders the result.
 */
import { formatQuantMix, ggufConfig, summarizeGguf, type GgufHeader } from '../src/gguf/index.js';
import { memoryMessages, type AdapterSummary, type Message, type ModelFacts } from './capabilities.js';
import { formatBytes } from './format.js';

export interface GgufPairFacts {
  /** One line each: architecture, quant mix, size, vision tower. */
  lines: string[];
  /** Whether it fits this adapter (and every tensor type is readable). */
  fits: boolean;
  /** The verdict first, then the memory estimate; an `error` message says why it does not fit. */
  messages: Message[];
}

/** The facts of a text + mmproj pair against `adapter` with a `maxContext`-token context. */
export function ggufPairFacts(text: GgufHeader, mmproj: GgufHeader, maxContext: number, adapter: AdapterSummary | null): GgufPairFacts {
  const ts = summarizeGguf(text);
  const ms = summarizeGguf(mmproj);
  // Throws a FormatError naming the file when the pair is not a Pixtral / mistral3 one.
  const c = ggufConfig(text, mmproj);
  const weightBytes = ts.bytes + ms.bytes;
  const quantized = Object.keys(ts.quantMix).some((t) => t !== 'F32' && t !== 'F16');
  const lines = [
    `Architecture: ${c.modelType === 'pixtral' ? 'Pixtral' : 'mistral3'} (${ts.architecture} text model${ts.name ? ` "${ts.name}"` : ''}: ` +
      `${c.text.numLayers} layers, hidden ${c.text.hiddenSize}, ${c.text.numHeads}/${c.text.numKvHeads} heads, vocabulary ${c.text.vocabSize}, trained context ${c.text.maxPositionEmbeddings}).`,
    `Quant mix: ${formatQuantMix(ts.quantMix)} (text); ${formatQuantMix(ms.quantMix)} (mmproj).`,
    `Size: ${formatBytes(weightBytes)} (text ${formatBytes(ts.bytes)}, mmproj ${formatBytes(ms.bytes)}), ${((ts.parameters + ms.parameters) / 1e6).toFixed(ts.parameters + ms.parameters < 1e8 ? 2 : 0)} M parameters.`,
    `Vision tower: ${c.vision.numLayers} layers, hidden ${c.vision.hiddenSize}, patch ${c.vision.patchSize} px, images up to ${c.vision.imageSize} px` +
      `${c.projector.spatialMergeSize > 1 ? `, ${c.projector.spatialMergeSize}x${c.projector.spatialMergeSize} patch merger` : ''} (${ms.architecture}, projector ${c.modelType === 'pixtral' ? 'pixtral' : 'with patch merger'}).`,
  ];
  const side = Math.floor(c.vision.imageSize / c.vision.patchSize);
  const facts: ModelFacts = {
    name: ts.name ?? 'the GGUF pair',
    dtype: 'gguf',
    kvCache: quantized ? 'f16' : 'f32', // the loader's default for a GGUF pair
    weightBytes,
    largestTensorBytes: Math.max(ts.largestTensor.bytes, ms.largestTensor.bytes),
    layers: c.text.numLayers,
    kvHeads: c.text.numKvHeads,
    headDim: c.text.headDim,
    maxPositionEmbeddings: c.text.maxPositionEmbeddings,
    visionHidden: c.vision.hiddenSize,
    maxPatches: side * side,
  };
  const unsupported = [...ts.unsupported, ...ms.unsupported];
  if (unsupported.length) {
    const m = `tensors in types this library cannot read: ${unsupported.slice(0, 4).join(', ')}${unsupported.length > 4 ? `, and ${unsupported.length - 4} more` : ''}`;
    return { lines, fits: false, messages: [{ level: 'error', text: `Cannot load: ${m}.` }] };
  }
  if (!adapter) return { lines, fits: false, messages: [{ level: 'error', text: 'Cannot tell whether it fits: there is no WebGPU adapter here.' }] };
  const messages = memoryMessages(facts, maxContext, adapter);
  const problem = messages.find((m) => m.level === 'error');
  const verdict: Message = problem
    ? { level: 'error', text: 'Does not fit this adapter (see below).' }
    : { level: 'info', text: `Fits this adapter (an estimate: WebGPU does not reveal the GPU's memory size).` };
  return { lines, fits: !problem, messages: [verdict, ...messages] };
}
