/**
 * Importing the library has no side effects: nothing touches `navigator.gpu`, starts a worker
 * or opens IndexedDB until a model is loaded.
 */
import { expect, it } from 'vitest';

it('imports every entry without touching navigator.gpu, workers or IndexedDB', async () => {
  const touched: string[] = [];
  const proto = Object.getPrototypeOf(navigator) as object;
  const gpuDesc = Object.getOwnPropertyDescriptor(proto, 'gpu')!;
  const RealWorker = globalThis.Worker;
  const realOpen = indexedDB.open.bind(indexedDB);
  Object.defineProperty(proto, 'gpu', { configurable: true, get: () => (touched.push('navigator.gpu'), gpuDesc.get!.call(navigator)) });
  globalThis.Worker = class extends RealWorker {
    constructor(...a: ConstructorParameters<typeof Worker>) {
      touched.push('Worker');
      super(...a);
    }
  };
  indexedDB.open = (...a: Parameters<IDBFactory['open']>) => (touched.push('indexedDB.open'), realOpen(...a));
  try {
    const lib = await import('../../src/index.js');
    const tok = await import('../../src/text/tokenizer.js');
    expect(typeof lib.loadPixtral).toBe('function');
    expect(typeof tok.loadTokenizer).toBe('function');
    expect(touched).toEqual([]);
  } finally {
    Object.defineProperty(proto, 'gpu', gpuDesc);
    globalThis.Worker = RealWorker;
    indexedDB.open = realOpen;
  }
});
