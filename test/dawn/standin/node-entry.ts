/**
 * TEMPORARY stand-in for `src/node/index.ts` (the Node entry, built by another branch), so the
 * server tests run against a real engine before it lands: Dawn from `src/node/gpu.ts`, the
 * engine in-process, the model folder read from disk through the loader's `fetch` hook (cached
 * in fake-indexeddb, test-only), image bytes decoded by sharp into `ImageData`. Only
 * `register.mjs` maps the missing module here; delete this folder once the entry is on main.
 */
import 'fake-indexeddb/auto';
import { readFile } from 'node:fs/promises';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import sharp from 'sharp';
import { ImageData as CanvasImageData } from '@napi-rs/canvas';
import { installWebGPU } from '../../../src/node/gpu.js';
import type { PixtralModel } from '../../../src/client.js';
import type { ChatMessage, ChatOptions } from '../../../src/engine/types.js';
import { ImageError } from '../../../src/errors.js';

async function fileFetch(input: RequestInfo | URL): Promise<Response> {
  const url = new URL(String(input));
  try {
    return new Response(await readFile(fileURLToPath(url)));
  } catch {
    return new Response('not found', { status: 404 });
  }
}

async function toImageData(bytes: Uint8Array): Promise<ImageData> {
  try {
    const { data, info } = await sharp(bytes).rotate().ensureAlpha().raw().toBuffer({ resolveWithObject: true });
    return new CanvasImageData(new Uint8ClampedArray(data.buffer, data.byteOffset, data.length), info.width, info.height) as unknown as ImageData;
  } catch (e) {
    throw new ImageError(`could not decode the image: ${(e as Error).message}`, { cause: e });
  }
}

export async function loadPixtral(opts: { url: string; maxContext?: number; adapter?: string }) {
  await installWebGPU({ adapter: opts.adapter });
  (globalThis as Record<string, unknown>).ImageData ??= CanvasImageData;
  // After installWebGPU: src/gpu/tensor.ts reads GPUBufferUsage when it is first imported.
  const { Engine } = await import('../../../src/engine/index.js');
  const { PixtralModel } = await import('../../../src/client.js');
  const engine = new Engine();
  const url = pathToFileURL(`${resolve(opts.url)}/`).href;
  const info = await engine.load({ url, maxContext: opts.maxContext, fetch: fileFetch as typeof fetch });
  const model = new PixtralModel(engine, info, null);
  return {
    info,
    dispose: () => model.dispose(),
    chat(messages: ChatMessage[], o?: ChatOptions) {
      const prepared = (async () => {
        const out: ChatMessage[] = [];
        for (const m of messages) {
          if (typeof m.content === 'string') out.push(m);
          else out.push({ role: m.role, content: await Promise.all(m.content.map(async (p) => (p.type === 'image' && p.image instanceof Uint8Array ? { type: 'image' as const, image: await toImageData(p.image) } : p))) });
        }
        return out;
      })();
      // PixtralModel.chat takes messages synchronously: decode first, then stream.
      let inner: ReturnType<PixtralModel['chat']> | undefined;
      const ready = prepared.then((m) => (inner = model.chat(m, o)));
      const stats = ready.then((s) => s.stats);
      stats.catch(() => undefined);
      return {
        stats,
        async *[Symbol.asyncIterator]() {
          await ready;
          yield* inner!;
        },
      };
    },
  };
}
