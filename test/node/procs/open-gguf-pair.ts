/**
 * A separate process for test/node/disk-locks.test.ts: opens a GGUF pair into a disk cache
 * (`node --import tsx open-gguf-pair.ts <cacheDir> <textUrl> <mmprojUrl> <chunkBytes> [hold]`),
 * prints `{"fromCache":..,"key":..}` on one line, then releases it and exits; with `hold`, it
 * keeps the pair open until killed.
 */
import { openGgufPair } from '../../../src/gguf/cache.js';
import { diskGgufCache } from '../../../src/node/gguf-cache.js';

const [cacheDir, url, mmproj, chunkBytes, mode] = process.argv.slice(2);
const pair = await openGgufPair(diskGgufCache(cacheDir!), { url: url!, mmproj: mmproj!, chunkBytes: Number(chunkBytes), retry: { baseDelayMs: 1, maxDelayMs: 2 } });
console.log(JSON.stringify({ fromCache: pair.fromCache, key: pair.key }));
if (mode === 'hold') setInterval(() => {}, 1 << 30);
else await pair.release();
