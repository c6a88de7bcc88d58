/**
 * `chat.completions.create` parameters -> the engine's request: the mapping of every supported
 * option, the refusal (naming the parameter) of what the engine does not implement, type checks
 * with unknown fields ignored, and data: URL decoding of image parts.
 */
import { describe, expect, it } from 'vitest';
import { ImageError, RequestError } from '../../src/errors.js';
import { parseChatRequest } from '../../src/openai/request.js';
import { requestResponseFormat } from '../../src/openai/response-format.js';
import { parseDataUrl, resolveImageUrl } from '../../src/openai/images.js';
import { completion, chunk, responseHead } from '../../src/openai/response.js';

const user = (content: unknown) => ({ messages: [{ role: 'user', content }] });

function refused(body: unknown): RequestError {
  try {
    parseChatRequest(body);
  } catch (e) {
    expect(e).toBeInstanceOf(RequestError);
    return e as RequestError;
  }
  throw new Error(`accepted: ${JSON.stringify(body)}`);
}

// A 1x1 PNG (the smallest valid header the size probe reads).
const PNG_1x1 =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';

describe('parseChatRequest', () => {
  it('maps OpenAI options and the extensions onto the engine options', () => {
    const r = parseChatRequest({
      model: 'pixtral',
      ...user('hi'),
      max_tokens: 50,
      temperature: 0.7,
      top_p: 0.9,
      seed: 7,
      stop: 'END',
      top_k: 20,
      repetition_penalty: 1.1,
      longest_edge: 512,
      n: 1,
      presence_penalty: 0,
      frequency_penalty: null,
      user: 'someone',
      some_future_field: { x: 1 },
    });
    expect(r.options).toEqual({ maxTokens: 50, temperature: 0.7, topP: 0.9, seed: 7, stop: ['END'], topK: 20, repetitionPenalty: 1.1, longestEdge: 512 });
    expect(r.stream).toBe(false);
    expect(r.model).toBe('pixtral');
    // max_completion_tokens is the newer name and wins over max_tokens.
    expect(parseChatRequest({ ...user('x'), max_tokens: 9, max_completion_tokens: 3 }).options.maxTokens).toBe(3);
  });

  it('keeps text and image parts in order, maps developer to system', () => {
    const r = parseChatRequest({
      messages: [
        { role: 'developer', content: 'be brief' },
        { role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG_1x1}`, detail: 'low' } }, { type: 'text', text: 'b' }] },
        { role: 'assistant', content: [{ type: 'text', text: 'c' }] },
      ],
    });
    expect(r.messages[0]).toEqual({ role: 'system', content: 'be brief' });
    const parts = r.messages[1]!.content as { type: string; param?: string }[];
    expect(parts.map((p) => p.type)).toEqual(['text', 'image_url', 'text']);
    expect(parts[1]!.param).toBe('messages[1].content[1].image_url.url');
  });

  it('refuses what the engine does not implement, naming the parameter', () => {
    expect(refused({ ...user('x'), n: 2 }).param).toBe('n');
    expect(refused({ ...user('x'), tools: [{ type: 'function', function: { name: 'f' } }] }).param).toBe('tools');
    expect(refused({ ...user('x'), tool_choice: 'auto' }).param).toBe('tool_choice');
    expect(refused({ ...user('x'), logprobs: true }).param).toBe('logprobs');
    expect(refused({ ...user('x'), top_logprobs: 2 }).param).toBe('top_logprobs');
    expect(refused({ ...user('x'), logit_bias: { '12': 5 } }).param).toBe('logit_bias');
    expect(refused({ ...user('x'), presence_penalty: 0.5 }).message).toMatch(/repetition_penalty/);
    expect(refused({ ...user('x'), frequency_penalty: -1 }).param).toBe('frequency_penalty');
    expect(refused({ ...user('x'), audio: { voice: 'x', format: 'mp3' } }).param).toBe('audio');
    expect(refused({ ...user('x'), modalities: ['text', 'audio'] }).param).toBe('modalities');
    expect(refused({ messages: [{ role: 'tool', content: 'r', tool_call_id: 'a' }] }).param).toBe('messages[0].role');
    expect(refused(user([{ type: 'input_audio', input_audio: { data: '', format: 'wav' } }])).param).toBe('messages[0].content[0].type');
    // Accepted forms of "not asked for".
    expect(() => parseChatRequest({ ...user('x'), tools: [], tool_choice: 'none', logprobs: false, logit_bias: {}, modalities: ['text'] })).not.toThrow();
  });

  it('refuses wrong types and ranges, naming the parameter', () => {
    expect(refused({}).param).toBe('messages');
    expect(refused([]).param).toBe('body');
    expect(refused({ messages: [] }).param).toBe('messages');
    expect(refused({ ...user('x'), max_tokens: '5' }).param).toBe('max_tokens');
    expect(refused({ ...user('x'), max_tokens: 0 }).param).toBe('max_tokens');
    expect(refused({ ...user('x'), temperature: 3 }).param).toBe('temperature');
    expect(refused({ ...user('x'), top_p: 0 }).param).toBe('top_p');
    expect(refused({ ...user('x'), top_k: 65 }).param).toBe('top_k');
    expect(refused({ ...user('x'), seed: 1.5 }).param).toBe('seed');
    expect(refused({ ...user('x'), stop: [1] }).param).toBe('stop');
    expect(refused({ ...user('x'), stream: 'yes' }).param).toBe('stream');
    expect(refused({ ...user('x'), model: 3 }).param).toBe('model');
    expect(refused({ messages: [{ role: 'robot', content: 'x' }] }).param).toBe('messages[0].role');
    expect(refused({ messages: [{ role: 'user', content: 5 }] }).param).toBe('messages[0].content');
    expect(refused(user([{ type: 'text', text: 5 }])).param).toBe('messages[0].content[0].text');
    expect(refused(user([{ type: 'image_url', image_url: 'data:x' }])).param).toBe('messages[0].content[0].image_url');
    expect(refused(user([{ type: 'image_url', image_url: { url: 'file:///etc/passwd' } }])).param).toBe('messages[0].content[0].image_url.url');
    expect(refused({ messages: [{ role: 'system', content: [{ type: 'image_url', image_url: { url: 'data:,' } }] }] }).param).toBe('messages[0].content[0].type');
    expect(refused({ ...user('x'), response_format: { type: 'xml' } }).param).toBe('response_format.type');
  });

  it('passes response_format on, refusing what the grammar engine cannot enforce', () => {
    expect(requestResponseFormat(parseChatRequest({ ...user('x'), response_format: { type: 'text' } }).responseFormat)).toEqual({ type: 'text' });
    const schema = { type: 'object', properties: { color: { enum: ['red', 'green'] } }, required: ['color'] };
    const ok = parseChatRequest({ ...user('x'), response_format: { type: 'json_schema', json_schema: { name: 'a', schema } } });
    expect(requestResponseFormat(ok.responseFormat)).toEqual({ type: 'json_schema', json_schema: { name: 'a', schema } });
    const bad = parseChatRequest({ ...user('x'), response_format: { type: 'json_schema', json_schema: { name: 'a', schema: { type: 'string', format: 'email' } } } });
    const err = (() => {
      try {
        requestResponseFormat(bad.responseFormat);
      } catch (e) {
        return e as RequestError;
      }
    })();
    expect(err).toBeInstanceOf(RequestError);
    expect(err!.param).toBe('response_format');
    expect(err!.message).toMatch(/"format" is not supported/);
  });
});

const noError = (): never => {
  throw new Error('expected a rejection');
};

describe('image URLs', () => {
  it('decodes base64 and percent-encoded data: URLs', () => {
    const a = parseDataUrl(`data:image/png;base64,${PNG_1x1}`, 'p');
    expect(a.mimeType).toBe('image/png');
    expect(Array.from(a.bytes.subarray(1, 4), (c) => String.fromCharCode(c)).join('')).toBe('PNG');
    expect(new TextDecoder().decode(parseDataUrl('data:text/plain,a%20b', 'p').bytes)).toBe('a b');
    expect(() => parseDataUrl('data:image/png;base64', 'p')).toThrow(RequestError);
    expect(() => parseDataUrl('data:image/png;base64,@@@', 'p')).toThrow(/base64/);
  });

  it('refuses bytes that are no image, naming the part, and remote URLs when not allowed', async () => {
    const blob = await resolveImageUrl(`data:image/png;base64,${PNG_1x1}`, 'p');
    expect(blob).toBeInstanceOf(Blob);
    expect((blob as Blob).type).toBe('image/png');
    const err = await resolveImageUrl(`data:image/png;base64,${btoa('not an image at all, just text')}`, 'messages[0].content[1].image_url.url').then(noError, (e: unknown) => e as Error & { param?: string });
    expect(err).toBeInstanceOf(ImageError);
    expect(err.message).toMatch(/^messages\[0\]\.content\[1\]\.image_url\.url: /);
    const remote = await resolveImageUrl('https://example.com/a.png', 'q', { allowRemoteImages: false }).then(noError, (e: unknown) => e as Error & { param?: string });
    expect(remote).toBeInstanceOf(RequestError);
    expect(remote.param).toBe('q');
  });
});

describe('response objects', () => {
  const stats = { promptTokens: 10, generatedTokens: 3, finishReason: 'eos' } as Parameters<typeof completion>[2];
  it('builds a ChatCompletion with finish_reason and usage', () => {
    const c = completion(responseHead('m'), 'red', stats);
    expect(c.object).toBe('chat.completion');
    expect(c.id).toMatch(/^chatcmpl-[0-9a-f]{24}$/);
    expect(c.choices[0]!.message.content).toBe('red');
    expect(c.choices[0]!.finish_reason).toBe('stop');
    expect(c.usage).toEqual({ prompt_tokens: 10, completion_tokens: 3, total_tokens: 13 });
    expect(completion(responseHead('m'), '', { ...stats, finishReason: 'length' }).choices[0]!.finish_reason).toBe('length');
  });
  it('puts finish_reason and usage on the last chunk only', () => {
    const head = responseHead('m');
    expect(chunk(head, { content: 'a' }).choices[0]!.finish_reason).toBeNull();
    expect(chunk(head, { content: 'a' }).usage).toBeUndefined();
    const last = chunk(head, {}, { ...stats, finishReason: 'stop' });
    expect(last.choices[0]!.finish_reason).toBe('stop');
    expect(last.usage!.total_tokens).toBe(13);
  });
});
