/**
 * Worker used by `image.test.ts`: runs `preprocessImage` where the library will run it (a Web
 * Worker: no DOM, OffscreenCanvas only) and posts the result back, transferring the pixels.
 */
import { serializeError } from '../../src/errors.js';
import { preprocessImage, type PreprocessOptions } from '../../src/image/preprocess.js';
import type { TransferableImage } from '../../src/image/decode.js';

const scope = self as unknown as {
  onmessage: ((ev: MessageEvent<{ image: TransferableImage; opts: PreprocessOptions }>) => void) | null;
  postMessage(msg: unknown, transfer?: Transferable[]): void;
};

scope.onmessage = (ev) => {
  preprocessImage(ev.data.image, ev.data.opts).then(
    (r) => scope.postMessage({ ok: true, result: r, hasDocument: typeof document !== 'undefined' }, [r.pixels.buffer]),
    (e: unknown) => scope.postMessage({ ok: false, error: serializeError(e) }),
  );
};
