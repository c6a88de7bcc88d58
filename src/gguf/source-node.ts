/**
 * A GGUF on a local disk (Node): read in place with positioned reads, never loaded whole.
 */
import { open } from 'node:fs/promises';
import type { ByteSource } from './source.js';

export function fileSource(path: string): ByteSource {
  return {
    name: path,
    async size() {
      const fh = await open(path, 'r');
      try {
        return (await fh.stat()).size;
      } finally {
        await fh.close();
      }
    },
    async read(offset, length) {
      const fh = await open(path, 'r');
      try {
        const buf = new Uint8Array(length);
        let got = 0;
        while (got < length) {
          const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        return buf.subarray(0, got);
      } finally {
        await fh.close();
      }
    },
  };
}
