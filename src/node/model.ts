/**
 * `loadPixtral` for Node: the same engine, API and types as the browser client
 * (`PixtralModel`: `chat` -> `ChatStream`, `complete`, `generate`, `reset`, `dispose`), run
 * in-process on Dawn (`gpu.ts`). The model `url` is a folder made by `pixtral-webgpu convert`
 * (a path or `file:` URL, read in place) or an http(s) URL (downloaded once into the disk cache,
 * `cache.ts`). Image parts also take file paths, bytes and PDFs (`inputs.ts`).
 *
 * In-process use (e.g. a server): one `loadPixtral` per model; the returned model serialises
 * its calls (one engine, one queue), so concurrent `chat` calls simply wait their turn;
 * `dispose()` frees the GPU memory. Nothing here touches process state beyond installing the
 * WebGPU globals (`installWebGPU`), and nothing runs on import.
 */
import { Engine, type ChatMessage, type ChatOptions, type LoadRequest, type ModelInfo } from '../engine/index.js';
import { PixtralModel, type ChatStream } from '../client.js';
import { AbortError, FormatError } from '../errors.js';
import type { TextPart } from '../text/prompt.js';
import type { LoadProgress } from '../weights/progress.js';
import type { ModelOpener } from '../weights/source.js';
import { openRemoteModel } from './cache.js';
import { diskGgufCache } from './gguf-cache.js';
import { fileURLToPath } from 'node:url';
import { fileSource } from '../gguf/source-node.js';
import { urlSource, type ByteSource } from '../gguf/source.js';
import { isLocalModel, openModelFolder } from './files.js';
import { installWebGPU, type NodeWebGPUOptions } from './gpu.js';
import { resolveImage, type NodeImageInput, type ResolveImageOptions } from './inputs.js';

/** An image part in Node: any `NodeImageInput`; a PDF expands to one image per selected page. */
export interface NodeImagePart extends ResolveImageOptions {
  type: 'image';
  image: NodeImageInput;
}

export interface NodeChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string | (TextPart | NodeImagePart)[];
}

export interface NodeLoadOptions extends Omit<LoadRequest, 'onProgress' | 'openModel' | 'openGguf' | 'ggufCache'>, NodeWebGPUOptions {
  /** Progress of download (URLs), verification and GPU upload (monotonic bytes). */
  onProgress?: (p: LoadProgress) => void;
  /** Expected weight dtype of the converted model; a mismatch is a FormatError. */
  dtype?: 'q4' | 'f16' | 'f32';
  /** Disk cache root for http(s) models and GGUF pairs (default `defaultCacheDir()`). */
  cacheDir?: string;
  /** Default PDF render resolution for image parts (default `DEFAULT_DPI`). */
  pdfDpi?: number;
}

export class NodePixtralModel extends PixtralModel {
  constructor(engine: Engine, info: ModelInfo, private readonly pdfDpi?: number) {
    super(engine, info, null);
  }

  /** Streams the answer; image parts take paths, bytes, PDFs (`NodeImagePart`) as well. */
  override chat(messages: NodeChatMessage[] | ChatMessage[], opts: ChatOptions = {}): ChatStream {
    return super.chat(messages as ChatMessage[], opts);
  }

  override complete(messages: NodeChatMessage[] | ChatMessage[], opts: ChatOptions = {}) {
    return super.complete(messages as ChatMessage[], opts);
  }

  /** Decodes Node image inputs (files, bytes, PDF pages) to RGBA before the engine sees them. */
  protected override async prepareMessages(messages: ChatMessage[]): Promise<{ messages: ChatMessage[]; transfer: Transferable[] }> {
    const out: ChatMessage[] = [];
    for (const m of messages as NodeChatMessage[]) {
      if (typeof m.content === 'string') {
        out.push(m as ChatMessage);
        continue;
      }
      const parts: Exclude<ChatMessage['content'], string> = [];
      for (const p of m.content) {
        if (p.type !== 'image') parts.push(p);
        else for (const r of await resolveImage(p.image, { pages: p.pages, dpi: p.dpi ?? this.pdfDpi })) parts.push({ type: 'image', image: r.image });
      }
      out.push({ role: m.role, content: parts });
    }
    return { messages: out, transfer: [] };
  }
}

/** A GGUF by path or `file:` URL, read in place; an http(s) GGUF by Range requests. */
function ggufOpener(url: string): ByteSource {
  return isLocalModel(url) ? fileSource(url.startsWith('file:') ? fileURLToPath(url) : url) : urlSource(url);
}

/** The opener for a model URL: a local folder in place, or the disk cache of an http(s) model. */
export function modelOpener(url: string, cacheDir?: string): ModelOpener {
  return isLocalModel(url) ? (o) => openModelFolder(o.url) : (o) => openRemoteModel({ ...o, cacheDir });
}

/**
 * Loads a converted model onto the Dawn adapter (`adapter` option or `PIXTRAL_WEBGPU_ADAPTER`)
 * and returns it. `url`: a model folder (path or `file:` URL) or an http(s) base URL.
 */
export async function loadPixtral(opts: NodeLoadOptions): Promise<NodePixtralModel> {
  if (opts.signal?.aborted) throw new AbortError();
  const { dtype, onProgress, signal, adapter, dawnFlags, cacheDir, pdfDpi, ...load } = opts;
  await installWebGPU({ adapter, dawnFlags });
  const engine = new Engine();
  try {
    // A GGUF pair by http(s) URL goes through the disk cache; local files and Blobs are read in place.
    const remote = (u: unknown) => typeof u === 'string' && !isLocalModel(u);
    const gguf = load.mmproj !== undefined && remote(load.url) && remote(load.mmproj) ? { ggufCache: diskGgufCache(cacheDir) } : { openGguf: ggufOpener };
    const openModel = typeof load.url === 'string' ? { openModel: modelOpener(load.url, cacheDir) } : {};
    const info = await engine.load({ ...load, ...openModel, ...gguf }, onProgress, signal);
    if (dtype && info.dtype !== dtype) throw new FormatError(`${info.name} holds a ${info.dtype} model, but dtype "${dtype}" was asked for`);
    return new NodePixtralModel(engine, info, pdfDpi);
  } catch (e) {
    await engine.dispose().catch(() => undefined);
    throw e;
  }
}
