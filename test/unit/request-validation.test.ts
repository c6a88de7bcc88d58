/**
 * Request validation (`src/engine/validate.ts`), the checks that run before any image, tokenizer
 * or GPU work, in the client and in the engine: each bad request is a typed error naming the
 * message, part, option or position at fault.
 */
import { describe, expect, it } from 'vitest';
import { normalizeInputIds, normalizeStop, validateGenerateImages, validateGenerationOptions, validateLoadOptions, validateMessages } from '../../src/engine/validate.js';
import { FormatError, LimitError, type PixtralError } from '../../src/errors.js';
import { PIXTRAL_12B_2409 } from '../../src/config.js';

function fails(fn: () => unknown, cls: typeof FormatError | typeof LimitError, message: RegExp): PixtralError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(cls);
  expect((err as Error).message).toMatch(message);
  return err as PixtralError;
}

const image = { fake: 'an image object; validation does not decode it' };

describe('chat messages', () => {
  it('accepts a conversation without images outside user messages', () => {
    expect(() =>
      validateMessages([
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: [{ type: 'image', image }, { type: 'text', text: 'What is this?' }] },
        { role: 'assistant', content: [{ type: 'text', text: 'A box.' }] },
        { role: 'user', content: 'Which colour?' },
      ]),
    ).not.toThrow();
  });

  it('refuses images in system and assistant messages, naming the part', () => {
    const sys = fails(
      () => validateMessages([{ role: 'system', content: [{ type: 'image', image }] }, { role: 'user', content: [{ type: 'image', image }, { type: 'text', text: 'hi' }] }]),
      FormatError,
      /messages\[0\]\.content\[0\] is an image in a system message: Mistral's chat formats have no images in system or assistant messages/,
    );
    expect(sys.code).toBe('FORMAT');
    fails(
      () => validateMessages([{ role: 'user', content: 'a' }, { role: 'assistant', content: [{ type: 'text', text: 'b' }, { type: 'image', image }] }, { role: 'user', content: 'c' }]),
      FormatError,
      /messages\[1\]\.content\[1\] is an image in an assistant message/,
    );
  });

  it('refuses malformed shapes with the message and part index', () => {
    fails(() => validateMessages({ role: 'user', content: 'hi' }), FormatError, /messages must be an array .* \(got Object\)/);
    fails(() => validateMessages('hi'), FormatError, /messages must be an array/);
    fails(() => validateMessages([]), FormatError, /messages is empty/);
    fails(() => validateMessages([{ role: 'user' }]), FormatError, /messages\[0\]\.content must be a string or an array .*\(got no content\)/);
    fails(() => validateMessages([{ role: 'user', content: null }]), FormatError, /messages\[0\]\.content .*\(got null\)/);
    fails(() => validateMessages([{ role: 'user', content: 42 }]), FormatError, /messages\[0\]\.content .*\(got number 42\)/);
    fails(() => validateMessages([{ role: 'user', content: 'a' }, null]), FormatError, /messages\[1\] must be a \{ role, content \} object \(got null\)/);
    fails(() => validateMessages([{ role: 'robot', content: 'a' }]), FormatError, /messages\[0\]\.role must be one of system, user, assistant/);
    // An unknown part type is an unknown part type, not an unsupported image.
    fails(() => validateMessages([{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'audio', data: 1 }] }]), FormatError, /messages\[0\]\.content\[1\] has an unknown part type string "audio"/);
    fails(() => validateMessages([{ role: 'user', content: [{ type: 'image' }] }]), FormatError, /messages\[0\]\.content\[0\] is an image part without an image/);
    fails(() => validateMessages([{ role: 'user', content: [{ type: 'text', text: 3 }] }]), FormatError, /messages\[0\]\.content\[0\] is a text part whose text is number 3/);
  });
});

describe('generation options', () => {
  it('a stop string is one stop string; a list stays a list', () => {
    expect(normalizeStop('xe')).toEqual(['xe']);
    expect(normalizeStop(['a', 'bc'])).toEqual(['a', 'bc']);
    expect(normalizeStop(undefined)).toEqual([]);
    expect(validateGenerationOptions({ stop: 'xe', maxTokens: 3 })).toMatchObject({ stop: ['xe'], maxTokens: 3 });
  });

  it('refuses empty and non-string stops, and bad maxTokens', () => {
    fails(() => normalizeStop(['']), FormatError, /stop\[0\] is an empty string/);
    fails(() => normalizeStop(''), FormatError, /stop\[0\] is an empty string/);
    fails(() => normalizeStop(['a', 5]), FormatError, /stop\[1\] must be a string/);
    fails(() => normalizeStop(5), FormatError, /stop must be a string or an array of strings/);
    fails(() => validateGenerationOptions({ maxTokens: 1.5 }), LimitError, /maxTokens must be a non-negative integer \(got 1.5\)/);
    fails(() => validateGenerationOptions('fast' as never), FormatError, /options must be an object/);
  });
});

describe('generate requests', () => {
  const t = PIXTRAL_12B_2409.tokens;

  it('accepts integer typed arrays as inputIds and refuses the rest', () => {
    expect(normalizeInputIds(Uint32Array.of(1, 3, 4))).toEqual([1, 3, 4]);
    expect(normalizeInputIds(Int32Array.of(1, 2))).toEqual([1, 2]);
    fails(() => normalizeInputIds(Float32Array.of(1, 2)), FormatError, /inputIds must be an array of token ids or an integer typed array \(got Float32Array\)/);
    fails(() => normalizeInputIds('1 2 3'), FormatError, /inputIds must be an array/);
    fails(() => normalizeInputIds([]), FormatError, /inputIds is empty/);
    fails(() => normalizeInputIds([1, -2]), FormatError, /inputIds\[1\] is number -2/);
    fails(() => normalizeInputIds([1, 2.5]), FormatError, /inputIds\[1\] is number 2.5/);
  });

  it('refuses image tokens without images, NaN pixels and wrong pixel counts', () => {
    fails(() => validateGenerateImages({ inputIds: [] }, [1, 3, t.img, t.imgEnd, 4], t), FormatError, /inputIds\[2\] is an image token \(10\) but no images were given/);
    const pixels = new Float32Array(3 * 16 * 16);
    expect(() => validateGenerateImages({ inputIds: [], images: [{ pixels, height: 16, width: 16 }] }, [1], t)).not.toThrow();
    pixels[100] = NaN;
    fails(() => validateGenerateImages({ inputIds: [], images: [{ pixels, height: 16, width: 16 }] }, [1], t), FormatError, /images\[0\]\.pixels\[100\] is NaN: pixels must be finite/);
    fails(() => validateGenerateImages({ inputIds: [], images: [{ pixels, height: 16, width: 32 }] }, [1], t), FormatError, /images\[0\]\.pixels holds 768 values; 3 x 16 x 32 = 1536 expected/);
  });
});

describe('load options', () => {
  it('says the url is missing', () => {
    fails(() => validateLoadOptions({}), FormatError, /the model url is missing/);
    fails(() => validateLoadOptions(undefined), FormatError, /load options must be an object with a url/);
  });

  it('refuses NaN contexts and unknown KV-cache types before anything is allocated', () => {
    fails(() => validateLoadOptions({ url: '/m/', maxContext: NaN }), LimitError, /maxContext must be an integer >= 2 \(got number NaN\)/);
    fails(() => validateLoadOptions({ url: '/m/', maxPatches: 0 }), LimitError, /maxPatches must be an integer >= 1/);
    fails(() => validateLoadOptions({ url: '/m/', kvCache: 'q8' }), FormatError, /kvCache must be "f16" or "f32" \(got string "q8"\)/);
    expect(() => validateLoadOptions({ url: '/m/', maxContext: 512, kvCache: 'f16', maxPatches: 256 })).not.toThrow();
  });

  it('refuses a visionWeights other than "gpu" or "host", naming the option', () => {
    fails(() => validateLoadOptions({ url: '/m/', visionWeights: 'x' }), FormatError, /visionWeights must be "gpu" or "host" \(got string "x"\)/);
    fails(() => validateLoadOptions({ url: '/m/', visionWeights: true }), FormatError, /visionWeights must be "gpu" or "host" \(got boolean true\)/);
    expect(() => validateLoadOptions({ url: '/m/', visionWeights: 'host' })).not.toThrow();
    expect(() => validateLoadOptions({ url: '/m/', visionWeights: 'gpu' })).not.toThrow();
  });
});
