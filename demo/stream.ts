/** Reads a `ChatStream` to the end, passing each text delta on, and returns its stats. */
import type { ChatStream, GenerationStats } from '../src/index.js';

export async function readStream(stream: ChatStream, onDelta: (text: string) => void): Promise<GenerationStats> {
  for await (const d of stream) onDelta(d);
  return stream.stats;
}
