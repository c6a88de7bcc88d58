/**
 * Sequential shard writer. Bytes go to `shard-NNNNN.bin` files of at most `shardBytes` each, in
 * order; each file's SHA-256 is computed while it is written (no second read). A "stream" (one
 * tensor's data, or a q4 tensor's scales) starts 256-byte aligned inside its shard and may run on
 * into the next shards, giving one `Segment` per shard it touches. Every segment but a stream's
 * last ends exactly at a shard end, so its length is a multiple of 256 too.
 */
import { createHash, type Hash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Segment, ShardEntry } from '../src/weights/manifest.js';

export const SEGMENT_ALIGN = 256;

interface OpenShard {
  index: number;
  name: string;
  fh: FileHandle;
  hash: Hash;
  offset: number;
}

export function shardName(index: number): string {
  return `shard-${String(index).padStart(5, '0')}.bin`;
}

export class ShardWriter {
  private current: OpenShard | undefined;
  private readonly done: ShardEntry[] = [];
  private segments: Segment[] | undefined;
  private zeros = new Uint8Array(SEGMENT_ALIGN);
  /** Bytes written to all shards, padding included. */
  bytesWritten = 0;

  constructor(
    private readonly dir: string,
    private readonly shardBytes: number,
  ) {
    if (!Number.isInteger(shardBytes) || shardBytes < SEGMENT_ALIGN || shardBytes % SEGMENT_ALIGN !== 0) {
      throw new RangeError(`shard size ${shardBytes} must be a positive multiple of ${SEGMENT_ALIGN} bytes`);
    }
  }

  /** Starts a new stream at the next 256-byte boundary (or at the start of the next shard). */
  async begin(): Promise<void> {
    if (this.segments) throw new Error('ShardWriter: begin() inside an open stream');
    this.segments = [];
    const c = this.current;
    if (!c) return;
    const pad = (SEGMENT_ALIGN - (c.offset % SEGMENT_ALIGN)) % SEGMENT_ALIGN;
    if (c.offset + pad >= this.shardBytes) {
      await this.closeCurrent();
      return;
    }
    if (pad) await this.raw(c, this.zeros.subarray(0, pad));
  }

  async write(bytes: Uint8Array): Promise<void> {
    const segs = this.segments;
    if (!segs) throw new Error('ShardWriter: write() outside a stream');
    let pos = 0;
    while (pos < bytes.length) {
      let c = this.current;
      if (!c || c.offset >= this.shardBytes) {
        if (c) await this.closeCurrent();
        c = await this.openNext();
      }
      const n = Math.min(bytes.length - pos, this.shardBytes - c.offset);
      const last = segs[segs.length - 1];
      if (last && last.shard === c.index && last.offset + last.byteLength === c.offset) last.byteLength += n;
      else segs.push({ shard: c.index, offset: c.offset, byteLength: n });
      await this.raw(c, bytes.subarray(pos, pos + n));
      pos += n;
    }
  }

  /** Ends the stream and returns where its bytes went. */
  end(): Segment[] {
    const segs = this.segments;
    if (!segs) throw new Error('ShardWriter: end() without begin()');
    this.segments = undefined;
    return segs;
  }

  /** Closes the last shard and lists all shards. */
  async finish(): Promise<ShardEntry[]> {
    await this.closeCurrent();
    return this.done;
  }

  /** Closes an open shard file without finishing (after a failure). */
  async abort(): Promise<void> {
    const c = this.current;
    this.current = undefined;
    await c?.fh.close();
  }

  private async raw(c: OpenShard, bytes: Uint8Array): Promise<void> {
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await c.fh.write(bytes, done, bytes.length - done, c.offset + done);
      done += bytesWritten;
    }
    c.hash.update(bytes);
    c.offset += bytes.length;
    this.bytesWritten += bytes.length;
  }

  private async openNext(): Promise<OpenShard> {
    const index = this.done.length;
    const name = shardName(index);
    const fh = await open(join(this.dir, name), 'wx');
    this.current = { index, name, fh, hash: createHash('sha256'), offset: 0 };
    return this.current;
  }

  private async closeCurrent(): Promise<void> {
    const c = this.current;
    if (!c) return;
    this.current = undefined;
    await c.fh.close();
    this.done.push({ name: c.name, byteLength: c.offset, sha256: c.hash.digest('hex') });
  }
}
