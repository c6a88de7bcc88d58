/**
 * Child-process script of the remote test: answers sample questions with the local engine (the
 * OpenAI facade over the Node entry, in-process, as `serve` loads it) and prints them as JSON.
 *   node --import tsx test/dawn/local-answers.ts <model-dir> '<json [{image, question}]>'
 */
import { loadServedModel } from '../../cli/serve/model.js';
import { sampleDataUrl } from './serve-process.js';

const [model, list] = process.argv.slice(2);
const asks = JSON.parse(list!) as { image: string; question: string }[];
const engine = await loadServedModel({ model: model!, maxContext: 512, allowRemoteImages: false });
const answers: string[] = [];
for (const a of asks) {
  const r = await engine.chat.completions.create({
    messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: sampleDataUrl(a.image) } }, { type: 'text', text: a.question }] }],
    max_tokens: 4,
    temperature: 0,
  });
  answers.push(r.choices[0]!.message.content ?? '');
}
process.stdout.write(`${JSON.stringify(answers)}\n`);
await engine.dispose();
process.exit(0);
