/**
 * Typed errors of the whole library. Every failure a caller can act on has its own class and a
 * stable `code`, so `catch (e) { if (e instanceof QuotaError) ... }` works across the worker
 * boundary too (see `serializeError` / `reviveError`).
 */

export type ErrorCode =
  | 'WEBGPU_UNAVAILABLE'
  | 'DEVICE_LOST'
  | 'KERNEL'
  | 'OUT_OF_MEMORY'
  | 'LIMIT'
  | 'QUOTA'
  | 'INTEGRITY'
  | 'FORMAT'
  | 'NETWORK'
  | 'IMAGE'
  | 'CONTEXT_LENGTH'
  | 'ABORTED'
  | 'DISPOSED'
  | 'REQUEST'
  | 'IN_USE';

/** Class names by code: literal, so they survive minification (constructor names do not). */
const NAMES: Record<ErrorCode, string> = {
  WEBGPU_UNAVAILABLE: 'WebGPUUnavailableError',
  DEVICE_LOST: 'DeviceLostError',
  KERNEL: 'KernelError',
  OUT_OF_MEMORY: 'OutOfMemoryError',
  LIMIT: 'LimitError',
  QUOTA: 'QuotaError',
  INTEGRITY: 'IntegrityError',
  FORMAT: 'FormatError',
  NETWORK: 'NetworkError',
  IMAGE: 'ImageError',
  CONTEXT_LENGTH: 'ContextLengthError',
  ABORTED: 'AbortError',
  DISPOSED: 'DisposedError',
  REQUEST: 'RequestError',
  IN_USE: 'InUseError',
};

export class PixtralError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = NAMES[code];
  }
}

/** No `navigator.gpu`, no adapter, or an adapter without what the model needs. */
export class WebGPUUnavailableError extends PixtralError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('WEBGPU_UNAVAILABLE', message, options);
  }
}

/** The GPU device was lost (driver reset, tab in background on some OSes, explicit destroy). */
export class DeviceLostError extends PixtralError {
  readonly reason: string;
  constructor(reason: string, message: string) {
    super('DEVICE_LOST', `WebGPU device lost (${reason}): ${message}`);
    this.reason = reason;
  }
}

/** A WGSL kernel failed to compile or a dispatch failed validation; names the kernel. */
export class KernelError extends PixtralError {
  readonly kernel: string;
  constructor(kernel: string, message: string) {
    super('KERNEL', `kernel "${kernel}": ${message}`);
    this.kernel = kernel;
  }
}

/** A GPU allocation failed. */
export class OutOfMemoryError extends PixtralError {
  readonly requestedBytes: number;
  constructor(requestedBytes: number, message: string) {
    super('OUT_OF_MEMORY', message);
    this.requestedBytes = requestedBytes;
  }
}

/** A shape or size exceeds an adapter limit or a sanity bound. */
export class LimitError extends PixtralError {
  constructor(message: string) {
    super('LIMIT', message);
  }
}

/**
 * Not enough browser storage for the files still to download. Nothing was written when raised by
 * the quota check; raised by a failed write, the files stored before it stay stored.
 * `availableBytes` is null when the browser gives no estimate of its free space.
 */
export class QuotaError extends PixtralError {
  readonly neededBytes: number;
  readonly availableBytes: number | null;
  constructor(neededBytes: number, availableBytes: number | null, detail = '') {
    super(
      'QUOTA',
      `not enough browser storage: ${formatBytes(neededBytes)} needed, ` +
        `${availableBytes === null ? 'free space unknown (the browser gives no estimate)' : `${formatBytes(availableBytes)} available`}${detail ? `: ${detail}` : ''}`,
    );
    this.neededBytes = neededBytes;
    this.availableBytes = availableBytes;
  }
}

/** A shard or file failed verification (hash, length, truncated). */
export class IntegrityError extends PixtralError {
  constructor(message: string) {
    super('INTEGRITY', message);
  }
}

/** A file is not in the expected format (checkpoint, manifest, config, safetensors header). */
export class FormatError extends PixtralError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FORMAT', message, options);
  }
}

/** HTTP failures that outlived their retries. */
export class NetworkError extends PixtralError {
  readonly status?: number;
  constructor(message: string, status?: number, options?: { cause?: unknown }) {
    super('NETWORK', message, options);
    this.status = status;
  }
}

/** An image could not be decoded, or its size is absurd (zero, or beyond the decoder's limits). */
export class ImageError extends PixtralError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('IMAGE', message, options);
  }
}

/** The prompt (text + image tokens + requested new tokens) exceeds the context budget. */
export class ContextLengthError extends PixtralError {
  readonly promptTokens: number;
  readonly maxTokens: number;
  constructor(promptTokens: number, maxTokens: number, detail = '') {
    super(
      'CONTEXT_LENGTH',
      `prompt needs ${promptTokens} tokens but the context budget is ${maxTokens}${detail ? `: ${detail}` : ''}`,
    );
    this.promptTokens = promptTokens;
    this.maxTokens = maxTokens;
  }
}

/** The operation was aborted through its AbortSignal; the signal's reason is the `cause`. */
export class AbortError extends PixtralError {
  constructor(message = 'aborted', options?: { cause?: unknown }) {
    super('ABORTED', message, options);
  }
}

/**
 * A request parameter is malformed, has the wrong type, or asks for something not supported
 * (e.g. `n` > 1, `tools`); `param` names it as a path (`messages[0].content[1].image_url.url`).
 */
export class RequestError extends PixtralError {
  readonly param: string;
  constructor(param: string, message: string) {
    super('REQUEST', `${param}: ${message}`);
    this.param = param;
  }
}

/** The model or runtime was disposed, or its worker stopped (`reason` says why). */
export class DisposedError extends PixtralError {
  constructor(what = 'model', reason?: string) {
    super('DISPOSED', `${what} has been disposed${reason ? `: ${reason}` : ''}`);
  }
}

/**
 * A cached model cannot be deleted because a context of this origin (a tab, a worker, or this
 * one) or, in Node, a process sharing the disk cache has it loaded or is loading it; the versions
 * held were not deleted. Release the model there first.
 */
export class InUseError extends PixtralError {
  /** The model's base URL or manifest hash, as given. */
  readonly model: string;
  constructor(model: string, message: string) {
    super('IN_USE', message);
    this.model = model;
  }

  /** A delete of `model` that kept the `busy` versions (manifest hashes) `holders` hold, after deleting `deleted` others. */
  static kept(model: string, busy: readonly string[], deleted: number, holders: string): InUseError {
    return new InUseError(
      model,
      `${model}: not deleted, ${busy.length === 1 ? 'it is' : `${busy.length} versions are`} in use by ${holders} ` +
        `(manifest ${busy.map((h) => h.slice(0, 12)).join(', ')}); release the model there first${deleted ? ` (${deleted} unused version(s) deleted)` : ''}`,
    );
  }
}

/**
 * The error an aborted signal stands for: its reason when that is already one of ours, else an
 * `AbortError` whose message carries the reason ("aborted: user left") and whose `cause` is it.
 * A signal aborted without a reason has a DOMException `AbortError` as reason: that says nothing.
 */
export function abortError(signal?: AbortSignal): PixtralError {
  const r: unknown = signal?.reason;
  if (r instanceof PixtralError) return r;
  const silent = r === undefined || (r instanceof Error && r.name === 'AbortError');
  if (silent) return new AbortError();
  const text = r instanceof Error ? r.message : String(r);
  return new AbortError(`aborted: ${text}`, { cause: r });
}

export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw abortError(signal);
}

export function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (Math.abs(v) >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** Plain-object form that survives structured clone (worker -> main thread). */
export interface SerializedError {
  name: string;
  code?: ErrorCode;
  message: string;
  fields: Record<string, unknown>;
}

export function serializeError(e: unknown): SerializedError {
  if (e instanceof PixtralError) {
    const fields: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(e)) if (k !== 'code') fields[k] = v;
    return { name: e.name, code: e.code, message: e.message, fields };
  }
  const err = e instanceof Error ? e : new Error(String(e));
  return { name: err.name, message: err.message, fields: {} };
}

/** Classes by code: revival must not depend on (minified) class names. */
const classes: Record<ErrorCode, new (...a: never[]) => PixtralError> = {
  WEBGPU_UNAVAILABLE: WebGPUUnavailableError, DEVICE_LOST: DeviceLostError, KERNEL: KernelError,
  OUT_OF_MEMORY: OutOfMemoryError, LIMIT: LimitError, QUOTA: QuotaError, INTEGRITY: IntegrityError,
  FORMAT: FormatError, NETWORK: NetworkError, IMAGE: ImageError, CONTEXT_LENGTH: ContextLengthError,
  ABORTED: AbortError, DISPOSED: DisposedError, REQUEST: RequestError, IN_USE: InUseError,
};

export function reviveError(s: SerializedError): Error {
  const C = s.code ? classes[s.code] : undefined;
  if (!C || !s.code) {
    const e = new Error(s.message);
    e.name = s.name;
    return e;
  }
  const e = Object.create(C.prototype) as PixtralError;
  Object.assign(e, s.fields, { message: s.message, name: s.name, code: s.code });
  Object.defineProperty(e, 'stack', { value: `${s.name}: ${s.message}`, writable: true });
  return e;
}
