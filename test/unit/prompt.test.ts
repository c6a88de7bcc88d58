import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { imageTokenCount, imageTokenIds, renderPrompt } from '../../src/text/prompt.js';
import { configFromHf } from '../../src/config.js';
import { sharedDir } from '../fixture-server.js';

const tiny = configFromHf(JSON.parse(readFileSync(resolve(sharedDir, 'fixtures/pixtral-tiny-a/config.json'), 'utf8')));
const t = tiny.tokens;
// A stand-in encoder: the fixture cases give text as ids directly, so map each char to a fake id.
const fakeEncode = (s: string) => Array.from(s, (c) => 2000 + c.charCodeAt(0));

describe('image token layout', () => {
  it('matches the fixture prompt of one_image_wide (grid 3x7)', () => {
    const c = JSON.parse(readFileSync(resolve(sharedDir, 'fixtures/pixtral-tiny-a/cases/one_image_wide/case.json'), 'utf8'));
    const [rows, cols] = c.images[0].grid_rows_cols;
    const ids = imageTokenIds(rows, cols, t);
    expect(ids).toEqual(c.input_ids.slice(2, 2 + ids.length));
    expect(ids.length).toBe(c.images[0].num_prompt_tokens);
    expect(imageTokenCount(rows, cols)).toBe(ids.length);
  });

  it('matches every prompt of the demo model samples', () => {
    const qs = JSON.parse(readFileSync(resolve(sharedDir, 'models/pixtral-tiny-screens/samples/questions.json'), 'utf8'));
    for (const q of qs) {
      const [rows, cols] = q.grid;
      const img = imageTokenIds(rows, cols, t);
      const question: number[] = q.prompt_ids.slice(2 + img.length, -1);
      const r = renderPrompt([{ role: 'user', content: [{ type: 'image', rows, cols }, { type: 'text', text: 'Q' }] }], () => question, t);
      expect(r.ids).toEqual(q.prompt_ids);
      expect(r.images).toEqual([{ start: 2, rows, cols }]);
    }
  });

  it('rejects a non-integer grid', () => {
    expect(() => imageTokenIds(0, 3, t)).toThrow(/grid/);
    expect(() => imageTokenIds(2, 1.5, t)).toThrow(/grid/);
  });
});

describe('instruct format', () => {
  it('renders multi-turn conversations so each turn extends the previous prompt', () => {
    const first = renderPrompt([{ role: 'user', content: 'hi' }], fakeEncode, t).ids;
    const second = renderPrompt(
      [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'yo' },
        { role: 'user', content: 'more' },
      ],
      fakeEncode,
      t,
    ).ids;
    expect(first).toEqual([t.bos, t.inst, ...fakeEncode('hi'), t.instEnd]);
    expect(second).toEqual([...first, ...fakeEncode('yo'), t.eos, t.inst, ...fakeEncode('more'), t.instEnd]);
  });

  it('puts the system prompt before the last user message', () => {
    const ids = renderPrompt(
      [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'a' },
        { role: 'assistant', content: 'b' },
        { role: 'user', content: 'c' },
      ],
      fakeEncode,
      t,
    ).ids;
    const lastInst = ids.lastIndexOf(t.inst);
    expect(ids.slice(lastInst + 1, -1)).toEqual(fakeEncode('Be brief.\n\nc'));
    expect(ids.slice(0, lastInst)).toEqual([t.bos, t.inst, ...fakeEncode('a'), t.instEnd, ...fakeEncode('b'), t.eos]);
  });

  it('keeps several images in the order given, between text parts', () => {
    const r = renderPrompt(
      [{ role: 'user', content: [{ type: 'text', text: 'x' }, { type: 'image', rows: 1, cols: 2 }, { type: 'image', rows: 2, cols: 1 }] }],
      fakeEncode,
      t,
    );
    expect(r.images).toEqual([
      { start: 3, rows: 1, cols: 2 },
      { start: 6, rows: 2, cols: 1 },
    ]);
    expect(r.ids.slice(3, 10)).toEqual([t.img, t.img, t.imgEnd, t.img, t.imgBreak, t.img, t.imgEnd]);
  });

  it('refuses conversations that do not alternate or do not end with the user', () => {
    expect(() => renderPrompt([{ role: 'assistant', content: 'x' }], fakeEncode, t)).toThrow(/user/);
    expect(() =>
      renderPrompt([{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }], fakeEncode, t),
    ).toThrow(/alternate/);
    expect(() => renderPrompt([{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }], fakeEncode, t)).toThrow(/end with a user/);
  });
});
