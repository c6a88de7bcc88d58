/**
 * `createEngine`: one entry for the OpenAI-shaped engine, local or remote, with the same calls.
 *
 * - `{ url, ... }`: the model loaded on this page's WebGPU (`loadPixtral`, in a worker).
 * - `{ baseURL, model, apiKey?, headers? }`: an OpenAI-compatible server (`src/remote/`).
 * - `{ url, fallback: { baseURL, model } }`: local where it can run; where WebGPU is missing or
 *   the model does not fit the adapter, the remote one, with `info.fallbackReason` saying why.
 *
 * The remote backend (and with it the `openai` client's code) is imported only when used.
 */
import { DeviceLostError, LimitError, OutOfMemoryError, WebGPUUnavailableError } from '../errors.js';
import { gpuAvailable } from '../gpu/device.js';
import { loadPixtral, type LoadPixtralOptions } from '../client.js';
import type { RemoteEngineOptions } from '../remote/engine.js';
import { engineFromModel, type LocalEngineOptions } from './local.js';
import type { ChatEngine } from './types.js';

export type LocalCreateOptions = LoadPixtralOptions & LocalEngineOptions & {
  /** Used where the local engine cannot run (no WebGPU, the model does not fit). */
  fallback?: RemoteEngineOptions;
};

export type CreateEngineOptions = LocalCreateOptions | RemoteEngineOptions;

const isRemote = (o: CreateEngineOptions): o is RemoteEngineOptions => 'baseURL' in o && typeof o.baseURL === 'string';

/** Failures that mean "this machine cannot run the model", as opposed to a bad model or URL. */
function cannotRunHere(e: unknown): boolean {
  return e instanceof WebGPUUnavailableError || e instanceof OutOfMemoryError || e instanceof LimitError || e instanceof DeviceLostError;
}

async function remote(opts: RemoteEngineOptions, fallbackReason?: string): Promise<ChatEngine> {
  const { createRemoteEngine } = await import('../remote/engine.js');
  const engine = createRemoteEngine(opts);
  return fallbackReason ? { ...engine, info: { ...engine.info, fallbackReason }, chat: engine.chat, dispose: () => engine.dispose() } : engine;
}

/** Creates an engine with OpenAI's `chat.completions.create`; see the module comment. */
export async function createEngine(opts: CreateEngineOptions): Promise<ChatEngine> {
  if (isRemote(opts)) return remote(opts);
  const { fallback, allowRemoteImages, fetch, imageFromBytes, ...load } = opts;
  if (fallback && !gpuAvailable()) return remote(fallback, 'WebGPU is not available here (no navigator.gpu)');
  try {
    const model = await loadPixtral(load);
    return engineFromModel(model, { allowRemoteImages, fetch, imageFromBytes });
  } catch (e) {
    if (!fallback || !cannotRunHere(e)) throw e;
    return remote(fallback, `the local engine cannot run here: ${(e as Error).message}`);
  }
}
