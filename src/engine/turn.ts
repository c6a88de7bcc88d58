/**
 * One turn's input, before any GPU work: chat messages -> decoded and preprocessed images ->
 * prompt ids with image-token grids; or, for `generate`, token ids and preprocessed images ->
 * the images' places in the prompt.
 */
import { FormatError, throwIfAborted } from '../errors.js';
import type { ModelConfig } from '../config.js';
import { checkChatMessages, renderPromptAsync, type GridPart, type PromptMessage, type TextPart } from '../text/prompt.js';
import type { Tokenizer } from '../text/tokenizer.js';
import { preprocessImage, preprocessOptionsFor } from '../image/preprocess.js';
import type { PromptImage } from '../model/vlm.js';
import type { ChatMessage, GenerateRequest } from './types.js';

/** A prompt ready for prefill. */
export interface PreparedTurn {
  ids: number[];
  images: PromptImage[];
}

/** FNV-1a over the pixels' bits: names an image's content for KV-cache reuse. */
export function pixelKey(p: { pixels: Float32Array; height: number; width: number }): string {
  const u = new Uint32Array(p.pixels.buffer, p.pixels.byteOffset, p.pixels.length);
  let h = 0x811c9dc5;
  for (let i = 0; i < u.length; i++) h = Math.imul(h ^ u[i]!, 0x01000193);
  return `img${p.height}x${p.width}:${(h >>> 0).toString(16)}`;
}

/**
 * Chat messages -> prompt ids and images (images are decoded and preprocessed here, after the
 * messages' shape is checked). The layout is the tokenizer's version's; `encode` may be async.
 */
export async function prepareChat(
  messages: ChatMessage[],
  config: ModelConfig,
  tokenizer: Pick<Tokenizer, 'version' | 'specialIds'>,
  encode: (text: string) => number[] | Promise<number[]>,
  opts: { longestEdge?: number; signal?: AbortSignal },
): Promise<PreparedTurn> {
  checkChatMessages(messages);
  const images: { part: GridPart; pre: Awaited<ReturnType<typeof preprocessImage>> }[] = [];
  const prepOpts = preprocessOptionsFor(config, { longestEdge: opts.longestEdge });
  const prompt: PromptMessage[] = [];
  for (const m of messages) {
    if (typeof m.content === 'string') {
      prompt.push({ role: m.role, content: m.content });
      continue;
    }
    const parts: (TextPart | GridPart)[] = [];
    for (const p of m.content) {
      if (p.type === 'text') parts.push(p);
      else {
        const pre = await preprocessImage(p.image, prepOpts);
        const part: GridPart = { type: 'image', rows: pre.rows, cols: pre.cols };
        images.push({ part, pre });
        parts.push(part);
      }
      throwIfAborted(opts.signal);
    }
    prompt.push({ role: m.role, content: parts });
  }
  const rendered = await renderPromptAsync(prompt, tokenizer.version, tokenizer.specialIds, async (text) => await encode(text));
  return {
    ids: rendered.ids,
    images: rendered.images.map((r, i) => {
      const pre = images[i]!.pre;
      return { start: r.start, rows: r.rows, cols: r.cols, image: pre, key: pixelKey(pre) };
    }),
  };
}

/** `generate`'s ids and preprocessed images -> the images' places in the prompt. */
export function prepareGenerate(req: GenerateRequest, config: ModelConfig, tokenPixels: number): PreparedTurn {
  const t = config.tokens;
  const images: PromptImage[] = [];
  let from = 0;
  for (const [i, im] of (req.images ?? []).entries()) {
    const start = req.inputIds.indexOf(t.img, from);
    const px = tokenPixels;
    if (start < 0) throw new FormatError(`image ${i} has no [IMG] tokens in inputIds`);
    if (im.height % px || im.width % px) throw new FormatError(`image ${i}: ${im.width}x${im.height} is not a multiple of ${px}`);
    const rows = im.height / px;
    const cols = im.width / px;
    images.push({ start, rows, cols, image: im, key: pixelKey(im) });
    from = start + rows * (cols + 1);
  }
  return { ids: req.inputIds, images };
}
