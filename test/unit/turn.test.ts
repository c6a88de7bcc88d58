/**
 * The engine's turn preparation (`src/engine/turn.ts` `prepareChat`) in Node, no GPU: it checks
 * the messages before any image work (an image in a system or assistant message is a FormatError
 * and no image is even looked at), lays the prompt out by the tokenizer's version (the
 * mistral-common goldens), and its text encoding stops on the request's signal.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configFromHf } from '../../src/config.js';
import type { ChatMessage } from '../../src/engine/types.js';
import { prepareChat } from '../../src/engine/turn.js';
import { ImageCache } from '../../src/engine/image-cache.js';
import { AbortError, FormatError } from '../../src/errors.js';
import { loadTokenizer, type PromptMessage } from '../../src/text/tokenizer.js';
import { sharedDir } from '../fixture-server.js';

const config = configFromHf(JSON.parse(readFileSync(resolve(sharedDir, 'fixtures/pixtral-tiny-a/config.json'), 'utf8')) as Record<string, unknown>);
const tekken = readFileSync(resolve(sharedDir, 'fixtures/tokenizers/tekken-240911/tekken.json'));
const goldens = JSON.parse(readFileSync(resolve(sharedDir, 'fixtures/prompts/prompts.json'), 'utf8')) as {
  versions: Record<string, Record<string, { messages: PromptMessage[]; ids: number[] }>>;
};
const v7 = loadTokenizer(tekken, { version: 'v7' });

/** An image stand-in that records every property read: any image work would touch it. */
function watchedImage(touched: PropertyKey[]): { type: 'image'; image: never } {
  const image = new Proxy({}, { get: (_, key) => (touched.push(key), undefined), getPrototypeOf: () => (touched.push('prototype'), Object.prototype) });
  return { type: 'image', image: image as never };
}

describe('prepareChat', () => {
  it('an image in a system message: FormatError before any image is looked at', async () => {
    const touched: PropertyKey[] = [];
    const messages = [
      { role: 'system', content: [watchedImage(touched), { type: 'text', text: 'a system image' }] },
      { role: 'user', content: [watchedImage(touched), { type: 'text', text: 'what is this?' }] },
    ] as ChatMessage[];
    const err = await prepareChat(messages, config, v7, (t) => v7.encode(t), new ImageCache(), {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FormatError);
    expect((err as Error).message).toMatch(/messages\[0\].content\[0\] is an image in a system message: Mistral's chat formats have no images in system or assistant messages/);
    expect(touched).toEqual([]);
  });

  it('an image in an assistant message likewise', async () => {
    const touched: PropertyKey[] = [];
    const messages = [
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: [watchedImage(touched)] },
      { role: 'user', content: [watchedImage(touched)] },
    ] as ChatMessage[];
    await expect(prepareChat(messages, config, v7, (t) => v7.encode(t), new ImageCache(), {})).rejects.toThrow(/messages\[1\].content\[0\] is an image in an assistant message/);
    expect(touched).toEqual([]);
  });

  it('a conversation without them is laid out by the tokenizer version (golden ids)', async () => {
    const textOnly = goldens.versions.v7!.system_text!;
    const turn = await prepareChat(textOnly.messages as ChatMessage[], config, v7, (t) => v7.encodeAsync(t), new ImageCache(), {});
    expect(turn.ids).toEqual(textOnly.ids);
    expect(turn.images).toEqual([]);
    expect(turn.ids[1]).toBe(17); // [SYSTEM_PROMPT]: the v7 layout, not a silent v3
  });

  it("stops on the request's signal while encoding long text", async () => {
    const ac = new AbortController();
    const messages = [{ role: 'user', content: 'word '.repeat(100_000) }] as ChatMessage[];
    const pending = prepareChat(messages, config, v7, (t) => v7.encodeAsync(t, { signal: ac.signal, chunkChars: 1000 }), new ImageCache(), { signal: ac.signal });
    ac.abort();
    await expect(pending).rejects.toBeInstanceOf(AbortError);
  });
});
