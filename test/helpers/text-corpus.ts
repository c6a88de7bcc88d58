/**
 * The tokenizer test corpus (varied scripts, emoji, code, numbers, whitespace, long runs) and a
 * deterministic multi-script fuzz, shared by every test that checks ids against Tekken's.
 */
import { rng } from './random.js';

function randomLetters(n: number, seed: number): string {
  const u = rng(seed);
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(97 + Math.floor(u() * 26));
  return s;
}

export const corpus: string[] = [
  // Latin scripts
  'Hello, world!',
  'The quick brown fox jumps over the lazy dog.',
  "It's a dog's life; isn't it? We'll see, they'd say, you're right, I'm sure.",
  'Ça va? Déjà vu, naïve café, Straße, Øresund, Łódź, İstanbul, Ærøskøbing.',
  'ALL CAPS SENTENCE WITH ACRONYMS LIKE NASA, HTTP AND WebGPU.',
  'camelCaseIdentifier and snake_case_identifier and kebab-case-name and SCREAMING_CASE',
  "Mr. O'Neil — “smart quotes” ‘single’ … ellipsis – en dash «guillemets» ¿qué? ¡sí!",
  'Tiếng Việt có dấu: Người ta nói rằng học, học nữa, học mãi.',
  'Pixtral is a 12B multimodal model; it reads images of any size.',
  // Other scripts
  '你好，世界！今天天气很好。我们去公园散步吧。',
  '中文没有空格所以整段是一个很长的片段测试用例中文没有空格所以整段是一个很长的片段',
  '日本語のテキストとカタカナ、ひらがな。東京は日本の首都です。',
  '한국어 문장입니다. 안녕하세요! 만나서 반갑습니다.',
  'مرحبا بالعالم! كيف حالك اليوم؟',
  'العربية مع أرقام ١٢٣٤٥ وأرقام 12345 والتشكيل: مُحَمَّد',
  'שלום עולם, מה שלומך?',
  'नमस्ते दुनिया! हिन्दी में एक वाक्य। क्षत्रिय ज्ञान श्री',
  'বাংলা ভাষা, தமிழ் மொழி, ગુજરાતી',
  'Привет, мир! Съешь же ещё этих мягких французских булок, да выпей чаю.',
  'ЁЛКИ-ПАЛКИ, Україна, Беларусь, Српски',
  'สวัสดีชาวโลก ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ',
  'Καλημέρα κόσμε· Ελληνικά με τόνους: άέήίόύώ ΐΰ',
  'Հայերեն, ქართული ენა, ሰላም ዓለም, ᠮᠣᠩᠭᠣᠯ',
  // Emoji
  '😀😃😄😁😆',
  '👩‍👩‍👧‍👦 family and 👨‍💻 coder',
  '👍🏻👍🏼👍🏽👍🏾👍🏿 skin tones',
  '🏳️‍🌈 ❤️‍🔥 🧑🏽‍🚀 🫶🏾',
  '🇫🇷🇯🇵🇺🇸🇩🇪 flags',
  'emoji in text: I ❤ 🍕 and ☕! 🦩🪿🫎',
  // Code
  'def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n',
  'const x = await fetch(`${base}/api?id=${id}`).then((r) => r.json());',
  'fn main() {\n    let v: Vec<u32> = (0..10).map(|x| x * x).collect();\n    println!("{v:?}");\n}',
  '#include <stdio.h>\nint main(void) { printf("%d\\n", 42); return 0; }',
  'SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC LIMIT 10;',
  '<div class="box" style="color: red;"><p>Hi &amp; bye</p></div>',
  '{"key": [1, 2.5, -3e10, true, null], "nested": {"a": "b"}}',
  'for f in *.json; do jq .name "$f" | tee -a out.txt; done && echo ok || exit 1',
  '@group(0) @binding(0) var<storage, read> a: array<f32>;\nfn main(@builtin(global_invocation_id) id: vec3<u32>) {}',
  '$\\int_0^1 x^2\\,dx = \\frac{1}{3}$ and \\begin{align} a &= b \\\\ c &= d \\end{align}',
  // Numbers
  '3.14159265358979323846264338327950288',
  '1,234,567.89 and 1.234.567,89 and 1 234 567',
  '2024-07-18T12:34:56.789Z, 12:00 PM, 31/12/1999',
  '0x1F600 0b1010 0o777 1e-5 -42 +7 ½ ¾ ² ³ ⅷ',
  '1234567890'.repeat(50),
  // Whitespace
  '   leading and trailing   ',
  'tabs\tand\t\ttabs\t',
  'line1\nline2\n\nline4\n\n\n',
  'crlf\r\nline\r\n\r\nend\r',
  '    ',
  ' \t \n \r\n \t\t\n  x',
  'a  b   c    d     e',
  'trailing spaces   \n   next line',
  '\u00a0nbsp\u2003em space\u3000ideographic\u2028line separator',
  '\u0085next line\ufeffbom inside',
  '\ufeffleading bom',
  '',
  // Very long words and runs
  'a'.repeat(5000),
  randomLetters(2000, 7),
  ' '.repeat(1000),
  '\n'.repeat(300) + 'x',
  '-'.repeat(500) + '='.repeat(500),
  'Z'.repeat(200) + 'z'.repeat(200),
  // URLs, paths, identifiers
  'https://example.com/path/to/page?query=1&b=two#frag',
  'mailto:someone@example.org, ftp://files.example.net/pub/a.tar.gz',
  'https://de.wikipedia.org/wiki/Straße_(Begriffsklärung)',
  'C:\\Users\\Name\\Documents\\file.txt and /usr/local/bin/node',
  'user_42@sub.domain.co.uk #hashtag @mention',
  // Mixed
  'Mixing English, 中文, العربية, हिन्दी and emoji 🎉 in one line.',
  '| col1 | col2 |\n|------|------|\n| 1    | two  |',
  '∀x∈ℝ: x²≥0 ⇒ √(x²)=|x|, ∑ᵢ aᵢ ≠ ∏ⱼ bⱼ',
  '┌──┐\n│ab│\n└──┘ ░▒▓█',
  '𝄞 𝐇𝐞𝐥𝐥𝐨 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𠀀𠀁𪚥',
  'e\u0301 a\u0308 Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇',
  '\u0000\u0001\u0007\u001b[31mred\u001b[0m\u007f',
  // Special-token names are plain text
  '[INST] What is in this image? [/INST]',
  '<s>hello</s><unk><pad>',
  '[IMG][IMG_BREAK][IMG_END]',
  '<SPECIAL_42> [TOOL_CALLS]',
];

/** Deterministic strings from a mix of scripts: runs of 1-12 characters from one pool each. */
export function fuzzStrings(count: number, seed: number): string[] {
  const ranges: [number, number][] = [
    [0x20, 0x7e], [0x20, 0x7e], [0x61, 0x7a], [0x30, 0x39], [0xc0, 0x17f], [0x391, 0x3c9],
    [0x410, 0x44f], [0x5d0, 0x5ea], [0x621, 0x64a], [0x660, 0x669], [0x905, 0x94d], [0xe01, 0xe3a],
    [0xac00, 0xd7a3], [0x3041, 0x30fa], [0x4e00, 0x9fff], [0x300, 0x36f], [0x2010, 0x2027],
    [0x1f300, 0x1f64f], [0x1f3fb, 0x1f3ff], [0x20000, 0x2a6df], [0x1d400, 0x1d7ff],
  ];
  const singles = [' ', ' ', '\t', '\n', '\r\n', '\r', '\u00a0', '\u3000', '\u0085', '\ufeff', '\u200d', '\ufe0f', '  '];
  const u = rng(seed);
  const pick = (n: number): number => Math.floor(u() * n);
  const out: string[] = [];
  for (let s = 0; s < count; s++) {
    let text = '';
    const target = 1 + pick(100);
    while (text.length < target) {
      if (u() < 0.25) {
        text += singles[pick(singles.length)]!;
        continue;
      }
      const [lo, hi] = ranges[pick(ranges.length)]!;
      for (let k = 1 + pick(12); k > 0; k--) text += String.fromCodePoint(lo + pick(hi - lo + 1));
    }
    out.push(text);
  }
  return out;
}

