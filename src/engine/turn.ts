/**
 * One turn's input, before any GPU work: chat messages (validated first, `validate.ts`) ->
 * preprocessed images (through the engine's `ImageCache`: images of earlier turns cost nothing)
 * -> prompt ids with image-token grids; or, for `generate`, token ids and preprocessed images ->
 * the images' places in the prompt. The prompt ids depend only on the messages' text.
 */
import { FormatError, throwIfAborted } from '../errors.js';
import type { ModelConfig } from '../config.js';
import { renderPromptAsync, type GridPart, type PromptMessage, type TextPart } from '../text/prompt.js';
import type { Tokenizer } from '../text/tokenizer.js';
import { preprocessOptionsFor, type PreprocessedImage } from '../image/preprocess.js';
import type { PromptImage } from '../model/vlm.js';
import type { ImageCache } from './image-cache.js';
import { normalizeInputIds, validateGenerateImages, validateMessages } from './validate.js';
import type { GenerateRequest } from './types.js';

/** A prompt ready for prefill. */
export interface PreparedTurn {
  ids: number[];
  images: PromptImage[];
  /** Images decoded and resized for this turn (the others came from the image cache). */
  imagesPreprocessed: number;
}

/** FNV-1a over the pixels' bits: names an image's content for KV-cache reuse. */
export function pixelKey(p: { pixels: Float32Array; height: number; width: number }): string {
  const u = new Uint32Array(p.pixels.buffer, p.pixels.byteOffset, p.pixels.length);
  let h = 0x811c9dc5;
  for (let i = 0; i < u.length; i++) h = Math.imul(h ^ u[i]!, 0x01000193);
  return `img${p.height}x${p.width}:${(h >>> 0).toString(16)}`;
}

/**
 * Chat messages -> prompt ids and images (images are preprocessed here, or found in `cache`,
 * after the messages' shape is checked). The layout is the tokenizer's version's.
 */
export async function prepareChat(
  messages: unknown,
  config: ModelConfig,
  tokenizer: Pick<Tokenizer, 'version' | 'specialIds'>,
  encode: (text: string) => number[] | Promise<number[]>,
  cache: ImageCache,
  opts: { longestEdge?: number; signal?: AbortSignal },
): Promise<PreparedTurn> {
  validateMessages(messages); // before any image work: shapes, and images only in user messages
  const images: { pre: PreprocessedImage; key: string }[] = [];
  const prepOpts = preprocessOptionsFor(config, { longestEdge: opts.longestEdge });
  const prompt: PromptMessage[] = [];
  let preprocessed = 0;
  for (const m of messages) {
    if (typeof m.content === 'string') {
      prompt.push({ role: m.role, content: m.content });
      continue;
    }
    const parts: (TextPart | GridPart)[] = [];
    for (const p of m.content) {
      if (p.type === 'text') parts.push({ type: 'text', text: p.text });
      else {
        const got = await cache.get(p.image, prepOpts);
        if (got.fresh) preprocessed++;
        images.push({ pre: got.image, key: got.key });
        parts.push({ type: 'image', rows: got.image.rows, cols: got.image.cols });
      }
      throwIfAborted(opts.signal);
    }
    prompt.push({ role: m.role, content: parts });
  }
  const rendered = await renderPromptAsync(prompt, tokenizer.version, tokenizer.specialIds, async (text) => await encode(text));
  if (rendered.images.length !== images.length) {
    // validateMessages keeps images to user messages, which the prompt always renders.
    throw new FormatError(`the prompt placed ${rendered.images.length} of ${images.length} images`);
  }
  return {
    ids: rendered.ids,
    images: rendered.images.map((r, i) => ({ start: r.start, rows: r.rows, cols: r.cols, image: images[i]!.pre, key: images[i]!.key })),
    imagesPreprocessed: preprocessed,
  };
}

/** `generate`'s ids and preprocessed images -> the images' places in the prompt. */
export function prepareGenerate(req: GenerateRequest, config: ModelConfig, tokenPixels: number): PreparedTurn {
  const t = config.tokens;
  const ids = normalizeInputIds(req.inputIds);
  validateGenerateImages(req, ids, t);
  const images: PromptImage[] = [];
  let from = 0;
  for (const [i, im] of (req.images ?? []).entries()) {
    const start = ids.indexOf(t.img, from);
    const px = tokenPixels;
    if (start < 0) throw new FormatError(`image ${i} has no [IMG] tokens in inputIds`);
    if (im.height % px || im.width % px) throw new FormatError(`image ${i}: ${im.width}x${im.height} is not a multiple of ${px}`);
    const rows = im.height / px;
    const cols = im.width / px;
    images.push({ start, rows, cols, image: im, key: pixelKey(im) });
    from = start + rows * (cols + 1);
  }
  const extra = ids.indexOf(t.img, from);
  if (extra >= 0) throw new FormatError(`inputIds[${extra}] starts an [IMG] run that no image covers (${images.length} images given)`);
  return { ids, images, imagesPreprocessed: 0 };
}
