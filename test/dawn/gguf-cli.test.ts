/**
 * The real `pixtral-webgpu` binary with a llama.cpp GGUF pair (the `screens` Q4_0 text + F16
 * mmproj), as a child process on Dawn (lavapipe in CI): `ask model.gguf --mmproj mmproj.gguf`
 * gives the float64 reference's answers on the same dequantised weights (`ref_answers_dequant.json`),
 * `--json` names both files; `info` on a GGUF prints the header facts (architecture, quant mix,
 * size, readable types, and with --mmproj the pair's dimensions) without loading a weight; a
 * GGUF without --mmproj is a usage error (ask, ask-doc, serve, convert); `serve model.gguf --mmproj`
 * answers an OpenAI-shaped request like the reference.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sharedDir } from '../fixture-server.js';
import { BIN, dawnEnv, runCli, SAMPLES } from './node/samples.js';

const SCREENS = join(sharedDir, 'fixtures/gguf/screens');
const ref = JSON.parse(readFileSync(join(SCREENS, 'ref_answers_dequant.json'), 'utf8')) as {
  pairs: Record<string, { files: [string, string]; answers: { image: string; question_type: string; text: string }[] }>;
};
const questions = JSON.parse(readFileSync(join(SAMPLES, 'questions.json'), 'utf8')) as { image: string; question: string; question_type: string }[];
const [TEXT, MMPROJ] = ref.pairs['q4_0:f16']!.files.map((f) => join(SCREENS, f)) as [string, string];

const run = (args: string[]) => runCli(args);

describe('pixtral-webgpu CLI with a GGUF pair (child process, Dawn)', () => {
  it('ask model.gguf --mmproj mmproj.gguf answers like the float64 reference (text and --json)', async () => {
    const answers = ref.pairs['q4_0:f16']!.answers.filter((a) => a.image === 'screen_02.png');
    expect(answers).toHaveLength(3);
    for (const a of answers) {
      const q = questions.find((x) => x.image === a.image && x.question_type === a.question_type)!;
      const r = await run(['ask', TEXT, '--mmproj', MMPROJ, '--image', join(SAMPLES, q.image), '--max-tokens', '4', '--quiet', q.question]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout, `${a.image} ${a.question_type}`).toBe(`${a.text}\n`);
    }
    const q = questions.find((x) => x.image === 'screen_00.png' && x.question_type === 'color')!;
    const j = await run(['ask', TEXT, '--mmproj', MMPROJ, '--image', join(SAMPLES, q.image), '--max-tokens', '4', '--json', q.question]);
    expect(j.code, j.stderr).toBe(0);
    const out = JSON.parse(j.stdout) as { answer: string; model: Record<string, unknown> };
    expect(out.answer).toBe(ref.pairs['q4_0:f16']!.answers.find((a) => a.image === 'screen_00.png' && a.question_type === 'color')!.text);
    expect(out.model).toMatchObject({ url: TEXT, mmproj: MMPROJ, name: 'pixtral-tiny-screens', dtype: 'gguf', modelType: 'pixtral' });
  }, 900_000);

  it('info on a GGUF prints the header facts (text and --json); ask without --mmproj is a usage error', async () => {
    const t = await run(['info', TEXT, '--mmproj', MMPROJ]);
    expect(t.code, t.stderr).toBe(0);
    // Q4_0 for every 2-D tensor but `output` (Q8_0, the Q6_K fallback), F32 norms.
    expect(t.stdout).toMatch(/^gguf text {3}pixtral-tiny-screens \(llama\) from .*text-q4_0\.gguf: [\d.]+ KB, 30 tensors, [\d.]+ M parameters; Q4_0 \d+%, Q8_0 \d+%, F32 <1%$/m);
    expect(t.stdout).toMatch(/^gguf mmproj pixtral-tiny-screens \(clip\) from .*mmproj-f16\.gguf: [\d.]+ KB, 34 tensors, [\d.]+ M parameters; F16 100%, F32 <1%$/m);
    expect(t.stdout).toContain('readable    yes: every tensor type is supported');
    expect(t.stdout).toMatch(/^text {8}hidden 128, 3 layers, 4 heads \/ 2 kv, head dim 48, vocab 2048/m);
    expect(t.stdout).toMatch(/^vision {6}hidden 96, 3 layers/m);

    const j = await run(['info', TEXT, '--json']);
    expect(j.code, j.stderr).toBe(0);
    const info = JSON.parse(j.stdout) as { model: { format: string; text: { quantMix: Record<string, { tensors: number }>; tensors: number }; mmproj: null } };
    expect(info.model.format).toBe('gguf');
    expect(info.model.text.tensors).toBe(30);
    expect(info.model.text.quantMix.Q8_0!.tensors).toBe(1);
    expect(info.model.mmproj).toBeNull();

    for (const args of [['ask', TEXT, 'What color is the box?'], ['ask-doc', TEXT, 'doc.pdf', 'Total?'], ['serve', TEXT], ['convert', TEXT, 'out']]) {
      const u = await run(args);
      expect(u.code, args[0]).toBe(2);
      expect(u.stderr, args[0]).toMatch(/is a GGUF: pass its vision tower with --mmproj mmproj\.gguf/);
    }
    const wrong = await run(['ask', join(SAMPLES, '..'), '--mmproj', MMPROJ, 'What color is the box?']);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/--mmproj goes with a text GGUF/);
  }, 900_000);

  it('serve model.gguf --mmproj mmproj.gguf: an OpenAI-shaped answer like the reference', async () => {
    const child = spawn(process.execPath, [BIN, 'serve', TEXT, '--mmproj', MMPROJ, '--host', '127.0.0.1', '--port', '0'], { env: dawnEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d));
    const exited = new Promise<number | string>((r) => child.on('exit', (code, signal) => r(code ?? signal ?? -1)));
    try {
      const base = await new Promise<string>((ok, fail) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d;
          const m = /listening on (http:\/\/\S+)/.exec(out);
          if (m) ok(m[1]!);
        });
        void exited.then((c) => fail(new Error(`serve exited (${c}) before listening: ${err}`)));
      });
      const a = ref.pairs['q4_0:f16']!.answers.find((x) => x.image === 'screen_09.png' && x.question_type === 'color')!;
      const q = questions.find((x) => x.image === a.image && x.question_type === a.question_type)!;
      const png = readFileSync(join(SAMPLES, q.image)).toString('base64');
      const res = await fetch(`${base}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({
          messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } }, { type: 'text', text: q.question }] }],
          max_tokens: 4,
          temperature: 0,
        }),
      });
      expect(res.status, err).toBe(200);
      const body = (await res.json()) as { model: string; choices: { message: { content: string } }[] };
      expect(body.choices[0]!.message.content).toBe(a.text);
      expect(body.model).toBe('pixtral-tiny-screens'); // general.name
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  }, 900_000);
});
