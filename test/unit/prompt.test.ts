/**
 * The chat layouts (`src/text/prompt.ts`, through `loadTokenizer(file).encodeChat`) against
 * mistral-common's own ids (`../shared/fixtures/prompts/prompts.json`, v3 and v7, with the real
 * Tekken 240911 file), the image-token layout against the golden fixtures, mistral-common's
 * normalisation of runs of messages, and the refusals: images outside user messages, versions
 * without a layout, conversations the formats cannot hold, long text.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configFromHf } from '../../src/config.js';
import { AbortError, FormatError } from '../../src/errors.js';
import { imageTokenCount, imageTokenIds, layoutPrompt, type PromptMessage } from '../../src/text/prompt.js';
import { loadTokenizer } from '../../src/text/tokenizer.js';
import { sharedDir } from '../fixture-server.js';

const tekken240911 = readFileSync(resolve(sharedDir, 'fixtures/tokenizers/tekken-240911/tekken.json'));
const hfJson = readFileSync(resolve(sharedDir, 'fixtures/tokenizers/tekken-240718/tokenizer.json'));
const goldens = JSON.parse(readFileSync(resolve(sharedDir, 'fixtures/prompts/prompts.json'), 'utf8')) as {
  versions: Record<string, Record<string, { messages: PromptMessage[]; ids: number[]; text: string }>>;
};
const v3 = loadTokenizer(tekken240911); // config.version is "v3"
const v7 = loadTokenizer(tekken240911, { version: 'v7' }); // how the v7 goldens were made
const byVersion: Record<string, typeof v3> = { v3, v7 };

const tiny = configFromHf(JSON.parse(readFileSync(resolve(sharedDir, 'fixtures/pixtral-tiny-a/config.json'), 'utf8')));
const t = tiny.tokens;

describe("mistral-common's ids, every golden case", () => {
  it('has both versions and the cases the README lists', () => {
    expect(Object.keys(goldens.versions).sort()).toEqual(['v3', 'v7']);
    for (const cases of Object.values(goldens.versions)) expect(Object.keys(cases).length).toBeGreaterThanOrEqual(6);
  });

  for (const [version, cases] of Object.entries(goldens.versions)) {
    for (const [name, c] of Object.entries(cases)) {
      it(`${version} ${name}`, async () => {
        const tok = byVersion[version]!;
        const got = tok.encodeChat(c.messages);
        expect(got.ids).toEqual(c.ids);
        // Each image's start is where its [IMG] run begins, in order, with the grid given.
        const grids = c.messages.flatMap((m) => (typeof m.content === 'string' ? [] : m.content.filter((p) => p.type === 'image')));
        expect(got.images.map(({ rows, cols }) => ({ rows, cols }))).toEqual(grids.map((g) => ({ rows: g.rows, cols: g.cols })));
        for (const im of got.images) {
          expect(c.ids.slice(im.start, im.start + imageTokenCount(im.rows, im.cols))).toEqual(imageTokenIds(im.rows, im.cols, t));
          expect(c.ids[im.start - 1]).not.toBe(t.img);
        }
        expect(tok.decode(got.ids, { showSpecial: true })).toBe(c.text);
        expect(await tok.encodeChatAsync(c.messages)).toEqual(got);
      });
    }
  }

  it('the v7 system prompt uses [SYSTEM_PROMPT] 17 and [/SYSTEM_PROMPT] 18, found by name', () => {
    expect([v7.specialIds.system, v7.specialIds.systemEnd]).toEqual([17, 18]);
    const ids = v7.encodeChat([{ role: 'system', content: 'S' }, { role: 'user', content: 'U' }]).ids;
    expect(ids.slice(0, 2)).toEqual([1, 17]);
    expect(ids.indexOf(18)).toBeLessThan(ids.indexOf(3));
  });
});

describe('versions', () => {
  it('reads the version from tekken.json; the option overrides it', () => {
    expect(v3.version).toBe('v3');
    expect(v7.version).toBe('v7');
  });

  it('a version without a layout here is a FormatError, never a silent v3', () => {
    const v11 = loadTokenizer(tekken240911, { version: 'v11' });
    expect(() => v11.encodeChat([{ role: 'user', content: 'hi' }])).toThrow(FormatError);
    expect(() => v11.encodeChat([{ role: 'user', content: 'hi' }])).toThrow(/"v11" is not implemented \(implemented: v3, v7\)/);
    expect(() => loadTokenizer(tekken240911, { version: 'seven' })).toThrow(FormatError);
  });

  it('a tokenizer.json names no version: encodeChat says to pass one, and works when given', () => {
    const hf = loadTokenizer(hfJson);
    expect(hf.version).toBeUndefined();
    expect(() => hf.encodeChat([{ role: 'user', content: 'hi' }])).toThrow(/no chat-format version.*\{ version \}/);
    const c = goldens.versions.v7!.system_image_text!;
    expect(loadTokenizer(hfJson, { version: 'v7' }).encodeChat(c.messages).ids).toEqual(c.ids);
  });
});

describe('images outside user messages', () => {
  const image = { type: 'image' as const, rows: 1, cols: 2 };
  for (const role of ['system', 'assistant'] as const) {
    it(`an image in a ${role} message is a FormatError naming it, in both layouts`, () => {
      const messages: PromptMessage[] = [
        ...(role === 'system' ? [{ role, content: [image, { type: 'text' as const, text: 'x' }] }] : []),
        { role: 'user', content: [{ type: 'text', text: 'look' }, image] },
        ...(role === 'assistant' ? [{ role, content: [image] }, { role: 'user' as const, content: 'and?' }] : []),
      ];
      for (const tok of [v3, v7]) {
        expect(() => tok.encodeChat(messages)).toThrow(FormatError);
        const i = role === 'system' ? 0 : 1; // the image is part 0 of that message
        expect(() => tok.encodeChat(messages)).toThrow(`message ${i} (${role}) part 0 is an image: Mistral's chat formats have no images in ${role} messages`);
      }
    });
  }

  it('the same conversation without them renders, its image where the user put it', () => {
    const r = v3.encodeChat([{ role: 'system', content: 'x' }, { role: 'user', content: [{ type: 'text', text: 'look' }, image] }]);
    expect(r.images).toEqual([{ start: r.ids.length - 1 - imageTokenCount(1, 2), rows: 1, cols: 2 }]);
  });
});

describe('conversations the formats cannot hold', () => {
  const bad: [string, unknown, RegExp][] = [
    ['not an array', { role: 'user', content: 'x' }, /messages must be an array/],
    ['no user message', [{ role: 'system', content: 'x' }], /no user message/],
    ['an unknown role', [{ role: 'tool', content: 'x' }], /message 0: role must be/],
    ['no content', [{ role: 'user' }], /message 0 \(user\): content must be a string or an array of parts \(got undefined/],
    ['null content', [{ role: 'user', content: null }], /message 0 \(user\): content .* \(got null\)/],
    ['a number as content', [{ role: 'user', content: 5 }], /got number 5/],
    ['an unknown part type', [{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'audio' }] }], /message 0 \(user\) part 1: type must be "text" or "image" \(got "audio"\)/],
    ['a text part without text', [{ role: 'user', content: [{ type: 'text' }] }], /part 0: a text part needs a string "text"/],
    ['ending with the assistant', [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }], /must end with a user message/],
    ['starting with the assistant', [{ role: 'assistant', content: 'a' }, { role: 'user', content: 'b' }], /must start with a user message/],
    ['an empty answer', [{ role: 'user', content: 'a' }, { role: 'assistant', content: '' }, { role: 'user', content: 'b' }], /message 1 \(assistant\) is empty/],
  ];
  for (const [what, messages, message] of bad) {
    it(`${what}: FormatError`, () => {
      expect(() => v3.encodeChat(messages as PromptMessage[])).toThrow(FormatError);
      expect(() => v3.encodeChat(messages as PromptMessage[])).toThrow(message);
    });
  }

  it('v7 has no place for a system message after the last user message; v3 folds it in', () => {
    const m: PromptMessage[] = [{ role: 'user', content: 'a' }, { role: 'system', content: 's' }];
    expect(() => v7.encodeChat(m)).toThrow(FormatError);
    expect(v3.encodeChat(m).ids).toEqual([1, 3, ...v3.encode('s\n\na'), 4]);
  });

  it('a grid that is not a positive integer grid', () => {
    expect(() => imageTokenIds(0, 3, t)).toThrow(/grid/);
    expect(() => imageTokenIds(2, 1.5, t)).toThrow(/grid/);
    expect(() => v3.encodeChat([{ role: 'user', content: [{ type: 'image', rows: 2, cols: Number.NaN }] }])).toThrow(FormatError);
  });
});

describe("mistral-common's normalisation", () => {
  const enc = (s: string) => v3.encode(s);

  it('a run of user messages is one turn, joined by a blank line; so are text parts', () => {
    const joined = [1, 3, ...enc('a\n\nb'), 4];
    expect(v3.encodeChat([{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }]).ids).toEqual(joined);
    expect(v3.encodeChat([{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] }]).ids).toEqual(joined);
  });

  it('text around images: each stretch between images is one text, images stay in order', () => {
    const r = v3.encodeChat([
      { role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }, { type: 'image', rows: 1, cols: 1 }] },
      { role: 'user', content: [{ type: 'text', text: 'c' }, { type: 'image', rows: 1, cols: 2 }] },
    ]);
    expect(r.ids).toEqual([1, 3, ...enc('a\n\nb'), t.img, t.imgEnd, ...enc('c'), t.img, t.img, t.imgEnd, 4]);
    expect(r.images.map((i) => i.start)).toEqual([2 + enc('a\n\nb').length, 4 + enc('a\n\nb').length + enc('c').length]);
  });

  it('v3: every system message joins the system prompt, which opens the last user turn', () => {
    const ids = v3.encodeChat([
      { role: 'system', content: 'one' },
      { role: 'user', content: 'a' },
      { role: 'assistant', content: 'b' },
      { role: 'system', content: [{ type: 'text', text: 'two' }] },
      { role: 'user', content: 'c' },
    ]).ids;
    expect(ids).toEqual([1, 3, ...enc('a'), 4, ...enc('b'), 2, 3, ...enc('one\n\ntwo\n\nc'), 4]);
  });

  it('v3: with an image first, the system prompt is its own text before the image', () => {
    const ids = v3.encodeChat([{ role: 'system', content: 'S' }, { role: 'user', content: [{ type: 'image', rows: 1, cols: 1 }, { type: 'text', text: 'q' }] }]).ids;
    expect(ids).toEqual([1, 3, ...enc('S\n\n'), t.img, t.imgEnd, ...enc('q'), 4]);
  });

  it('an answer loses its trailing spaces (only spaces), as mistral-common encodes it', () => {
    const ids = v7.encodeChat([{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b \n  ' }, { role: 'user', content: 'c' }]).ids;
    expect(ids).toEqual([1, 3, ...enc('a'), 4, ...enc('b \n'), 2, 3, ...enc('c'), 4]);
  });

  it('multi-turn prompts extend each other, so the KV cache can reuse the earlier turn', () => {
    const first = v7.encodeChat([{ role: 'user', content: 'hi' }]).ids;
    const second = v7.encodeChat([{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'yo' }, { role: 'user', content: 'more' }]).ids;
    expect(second.slice(0, first.length)).toEqual(first);
  });
});

describe('the image-token layout', () => {
  it('matches the fixture prompt of one_image_wide (grid 3x7)', () => {
    const c = JSON.parse(readFileSync(resolve(sharedDir, 'fixtures/pixtral-tiny-a/cases/one_image_wide/case.json'), 'utf8'));
    const [rows, cols] = c.images[0].grid_rows_cols;
    const ids = imageTokenIds(rows, cols, t);
    expect(ids).toEqual(c.input_ids.slice(2, 2 + ids.length));
    expect(ids.length).toBe(c.images[0].num_prompt_tokens);
    expect(imageTokenCount(rows, cols)).toBe(ids.length);
  });

  it("reproduces every prompt of the demo model's samples through encodeChat", () => {
    const dir = resolve(sharedDir, 'models/pixtral-tiny-screens');
    const tok = loadTokenizer(readFileSync(resolve(dir, 'tekken.json')));
    const qs = JSON.parse(readFileSync(resolve(dir, 'samples/questions.json'), 'utf8')) as { question: string; grid: [number, number]; prompt_ids: number[] }[];
    expect(qs.length).toBeGreaterThan(0);
    for (const q of qs) {
      const [rows, cols] = q.grid;
      const r = tok.encodeChat([{ role: 'user', content: [{ type: 'image', rows, cols }, { type: 'text', text: q.question }] }]);
      expect(r.ids).toEqual(q.prompt_ids);
      expect(r.images).toEqual([{ start: 2, rows, cols }]);
    }
  });

  it('layoutPrompt says what goes where before any encoding', () => {
    expect(layoutPrompt([{ role: 'system', content: 'S' }, { role: 'user', content: [{ type: 'image', rows: 1, cols: 1 }] }], 'v7', v7.specialIds)).toEqual([
      [1], [17], 'S', [18], [3], { type: 'image', rows: 1, cols: 1 }, [4],
    ]);
  });
});

describe('long text', () => {
  // 200,000 one-digit pieces: 200,000 ids, once spread into push(...) (RangeError).
  const digits = '7'.repeat(200_000);

  it('200,000 characters become a prompt without overflowing the call stack', () => {
    const r = v3.encodeChat([{ role: 'system', content: digits }, { role: 'user', content: digits }]);
    expect(r.ids.length).toBe(400_000 + 4); // <s> [INST] 200k "\n\n"... [/INST]: digits are one token each
    expect(r.ids.slice(0, 3)).toEqual([1, 3, v3.encode('7')[0]]);
  });

  it('an earlier answer padded with 500,000 spaces loses the trailing ones (a / +$/ regex runs for minutes there)', () => {
    const spaces = ' '.repeat(500_000);
    const ids = v7.encodeChat([{ role: 'user', content: 'a' }, { role: 'assistant', content: `${spaces}b${spaces}` }, { role: 'user', content: 'c' }]).ids;
    expect(ids).toEqual([1, 3, ...v7.encode('a'), 4, ...v7.encode(`${spaces}b`), 2, 3, ...v7.encode('c'), 4]);
  });

  it('encodeChatAsync stops between chunks when its signal aborts', async () => {
    const ac = new AbortController();
    const pending = v3.encodeChatAsync([{ role: 'user', content: digits }], { signal: ac.signal, chunkChars: 1000 });
    ac.abort();
    await expect(pending).rejects.toBeInstanceOf(AbortError);
    await expect(v3.encodeChatAsync([{ role: 'user', content: 'x' }], { signal: ac.signal })).rejects.toBeInstanceOf(AbortError);
  });
});
