/**
 * A second (and third) browsing context for `store-locks.test.ts`: a module worker of the test
 * page's origin that loads, reads, releases and deletes cached models through the real loader,
 * its own IndexedDB connections and its own Web Locks client. With `gate`, its shard requests
 * wait for a `go` message, so the test can start another context's load while this one is
 * downloading.
 */
import { serializeError } from '../../src/errors.js';
import { deleteCachedModel, listCachedModels, loadModelFiles, sha256Hex, type LoadedModel } from '../../src/weights/index.js';

type Request =
  | { id: number; op: 'load'; url: string; gate?: boolean }
  | { id: number; op: 'go' }
  | { id: number; op: 'hashes' }
  | { id: number; op: 'release' }
  | { id: number; op: 'delete'; url: string }
  | { id: number; op: 'list' };

const scope = self as unknown as { onmessage: ((ev: MessageEvent<Request>) => void) | null; postMessage(msg: unknown): void };

let loaded: LoadedModel | null = null;
let open!: () => void;
const gateOpen = new Promise<void>((r) => (open = r));
let announced = false;

function gatedFetch(gate: boolean): typeof fetch {
  return async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (gate && !url.pathname.endsWith('/manifest.json')) {
      if (!announced) {
        announced = true;
        scope.postMessage({ event: 'downloading' });
      }
      await gateOpen;
    }
    return fetch(input, init);
  };
}

async function handle(m: Request): Promise<unknown> {
  switch (m.op) {
    case 'load': {
      loaded = await loadModelFiles({ url: m.url, fetch: gatedFetch(m.gate ?? false), retry: { baseDelayMs: 1, maxDelayMs: 4 } });
      return { fromCache: loaded.fromCache, downloaded: loaded.downloaded, manifestHash: loaded.manifestHash };
    }
    case 'go':
      open();
      return null;
    case 'hashes': {
      // The bytes this context reads from IndexedDB, hashed here, one per shard.
      const out: string[] = [];
      for (let i = 0; i < loaded!.manifest.shards.length; i++) out.push(await sha256Hex(await loaded!.files.readShard(i)));
      return out;
    }
    case 'release':
      await loaded?.release();
      return null;
    case 'delete':
      return deleteCachedModel(m.url);
    case 'list':
      return listCachedModels();
  }
}

scope.onmessage = (ev) => {
  handle(ev.data).then(
    (result) => scope.postMessage({ id: ev.data.id, ok: true, result }),
    (e: unknown) => scope.postMessage({ id: ev.data.id, ok: false, error: serializeError(e) }),
  );
};
