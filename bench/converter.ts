/**
 * Converter benchmark: peak memory must stay flat as the checkpoint grows.
 *
 *   npx tsx bench/converter.ts --out converter.json [--gb 3] [--dtype q4] [--keep]
 *
 * Generates HF-layout bf16 checkpoints with Nemo-like decoder shapes (hidden 5120, 32/8 heads of
 * 128, MLP 14336, a 131072 x 5120 embedding once the size allows, tied lm_head) plus a small
 * Pixtral-ViT, streamed to os.tmpdir(); converts each in a child process (`cli/main.ts --json`)
 * and reads the child's peak RSS (`process.resourceUsage().maxRSS`) and throughput. Two sizes
 * (about gb/3 and gb) plus the tiny fixture as a baseline; everything generated is deleted.
 * The checkpoint was just written, so it is read from the page cache: MB/s is the converter's
 * CPU-bound rate, not a cold-disk rate.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SafetensorsStreamWriter, type TensorSpec } from '../cli/safetensors-writer.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
const FIXTURE = join(process.env.PIXTRAL_SHARED_DIR ?? join(REPO, '..', 'shared'), 'fixtures', 'pixtral-tiny-a');

const H = 5120;
const HEADS = 32;
const KV = 8;
const HD = 128;
const FF = 14336;
const VH = 1024; // Pixtral-ViT
const VFF = 4096;
const VLAYERS = 2;

function layerBytes(): number {
  return 2 * (H * HD * (HEADS + 2 * KV) + H * HEADS * HD + 3 * H * FF + 2 * H);
}

/** Text layers and vocabulary for a checkpoint of about `gb` GB (1e9 bytes). */
export function shapeFor(gb: number): { layers: number; vocab: number } {
  const target = gb * 1e9;
  const fullEmb = 2 * 131072 * H;
  const vocab = target >= fullEmb + layerBytes() ? 131072 : 32768;
  const layers = Math.max(1, Math.round((target - 2 * vocab * H) / layerBytes()));
  return { layers, vocab };
}

function specs(layers: number, vocab: number): TensorSpec[] {
  const t = (name: string, shape: number[]): TensorSpec => ({ name, dtype: 'BF16', shape });
  const out: TensorSpec[] = [t('vision_tower.patch_conv.weight', [VH, 3, 16, 16]), t('vision_tower.ln_pre.weight', [VH])];
  for (let i = 0; i < VLAYERS; i++) {
    const p = `vision_tower.transformer.layers.${i}`;
    for (const x of ['q', 'k', 'v', 'o']) out.push(t(`${p}.attention.${x}_proj.weight`, [VH, VH]));
    out.push(t(`${p}.attention_norm.weight`, [VH]), t(`${p}.ffn_norm.weight`, [VH]));
    out.push(t(`${p}.feed_forward.gate_proj.weight`, [VFF, VH]), t(`${p}.feed_forward.up_proj.weight`, [VFF, VH]));
    out.push(t(`${p}.feed_forward.down_proj.weight`, [VH, VFF]));
  }
  out.push(t('multi_modal_projector.linear_1.weight', [H, VH]), t('multi_modal_projector.linear_1.bias', [H]));
  out.push(t('multi_modal_projector.linear_2.weight', [H, H]), t('multi_modal_projector.linear_2.bias', [H]));
  out.push(t('language_model.model.embed_tokens.weight', [vocab, H]));
  for (let i = 0; i < layers; i++) {
    const p = `language_model.model.layers.${i}`;
    out.push(t(`${p}.self_attn.q_proj.weight`, [HEADS * HD, H]), t(`${p}.self_attn.k_proj.weight`, [KV * HD, H]));
    out.push(t(`${p}.self_attn.v_proj.weight`, [KV * HD, H]), t(`${p}.self_attn.o_proj.weight`, [H, HEADS * HD]));
    out.push(t(`${p}.mlp.gate_proj.weight`, [FF, H]), t(`${p}.mlp.up_proj.weight`, [FF, H]), t(`${p}.mlp.down_proj.weight`, [H, FF]));
    out.push(t(`${p}.input_layernorm.weight`, [H]), t(`${p}.post_attention_layernorm.weight`, [H]));
  }
  out.push(t('language_model.model.norm.weight', [H]));
  return out;
}

function config(layers: number, vocab: number): object {
  return {
    model_type: 'llava',
    image_token_index: 10,
    projector_hidden_act: 'gelu',
    vision_feature_layer: -1,
    tie_word_embeddings: true,
    vision_config: {
      model_type: 'pixtral', hidden_size: VH, num_hidden_layers: VLAYERS, num_attention_heads: 16, head_dim: 64,
      intermediate_size: VFF, patch_size: 16, image_size: 1024, hidden_act: 'silu',
    },
    text_config: {
      model_type: 'mistral', hidden_size: H, num_hidden_layers: layers, num_attention_heads: HEADS, num_key_value_heads: KV,
      head_dim: HD, intermediate_size: FF, vocab_size: vocab, rope_theta: 1e9, rms_norm_eps: 1e-5, tie_word_embeddings: true,
    },
  };
}

/** Streams a checkpoint of random-looking bf16 weights (~N(0, 0.02)) to `dir`; returns its size. */
async function generate(dir: string, layers: number, vocab: number): Promise<number> {
  const list = specs(layers, vocab);
  await writeFile(join(dir, 'config.json'), JSON.stringify(config(layers, vocab)));
  // One 16 MB block of bf16 values, rotated per write so consecutive rows differ.
  const block = new Uint16Array(8 << 20);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  let s = 12345;
  for (let i = 0; i < block.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    f[0] = ((s / 4294967296) * 2 - 1) * 0.035;
    block[i] = u[0]! >>> 16;
  }
  const w = await SafetensorsStreamWriter.create(join(dir, 'model.safetensors'), list);
  let total = 0;
  let rot = 0;
  for (const t of list) {
    let left = t.shape.reduce((a, d) => a * d, 1);
    while (left > 0) {
      const n = Math.min(left, block.length - rot);
      await w.write(block.subarray(rot, rot + n));
      rot = (rot + 4099) % (block.length / 2);
      left -= n;
      total += n * 2;
    }
  }
  await w.close();
  return total;
}

interface RunResult {
  label: string;
  sourceBytes: number;
  layers?: number;
  vocab?: number;
  tensors: number;
  shards: number;
  outBytes: number;
  seconds: number;
  mbPerSecond: number;
  cpuSeconds: number;
  /** Source MB per CPU-second of the converter: independent of other load on the machine. */
  mbPerCpuSecond: number;
  peakRssMB: number;
}

function convertInChild(input: string, output: string, dtype: string): Omit<RunResult, 'label' | 'layers' | 'vocab'> {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(REPO, 'cli/main.ts'), 'convert', input, output, '--dtype', dtype, '--json', '--quiet', '--force'], {
    cwd: REPO,
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  if (r.status !== 0) throw new Error(`converter exited ${r.status}: ${r.stderr}`);
  const j = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {
    tensors: number; shards: number; bytesRead: number; bytesWritten: number; seconds: number; mbPerSecond: number; peakRssBytes: number;
    cpuSeconds: number;
  };
  return {
    sourceBytes: j.bytesRead, tensors: j.tensors, shards: j.shards, outBytes: j.bytesWritten, seconds: j.seconds,
    mbPerSecond: j.mbPerSecond, cpuSeconds: j.cpuSeconds, mbPerCpuSecond: j.bytesRead / 1e6 / j.cpuSeconds, peakRssMB: j.peakRssBytes / 2 ** 20,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { out: { type: 'string' }, gb: { type: 'string', default: '3' }, dtype: { type: 'string', default: 'q4' }, keep: { type: 'boolean' } },
  });
  const gb = Number(values.gb);
  if (!(gb > 0)) throw new Error('--gb must be positive');
  const sizes = [Math.max(0.5, gb / 3), gb];
  const work = await mkdtemp(join(tmpdir(), 'pixtral-bench-converter-'));
  const runs: RunResult[] = [];
  try {
    runs.push({ label: 'pixtral-tiny-a (baseline)', ...convertInChild(FIXTURE, join(work, 'tiny-out'), values.dtype!) });
    for (const size of sizes) {
      const { layers, vocab } = shapeFor(size);
      const src = join(work, `ckpt-${size}`);
      await rm(src, { recursive: true, force: true });
      await mkdir(src);
      const t0 = performance.now();
      const bytes = await generate(src, layers, vocab);
      console.error(`generated ${(bytes / 1e9).toFixed(2)} GB (${layers} layers, vocab ${vocab}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      const r = convertInChild(src, join(work, `out-${size}`), values.dtype!);
      runs.push({ label: `${(bytes / 1e9).toFixed(2)} GB bf16`, layers, vocab, ...r });
      console.error(`  -> ${r.tensors} tensors, ${r.shards} shards, ${(r.outBytes / 1e9).toFixed(2)} GB in ${r.seconds.toFixed(1)} s, ${r.mbPerSecond.toFixed(0)} MB/s (${r.mbPerCpuSecond.toFixed(0)} MB per CPU-s), peak RSS ${r.peakRssMB.toFixed(0)} MB`);
      if (!values.keep) await rm(src, { recursive: true, force: true });
      if (!values.keep) await rm(join(work, `out-${size}`), { recursive: true, force: true });
    }
  } finally {
    if (!values.keep) await rm(work, { recursive: true, force: true });
  }
  const report = { bench: 'converter', dtype: values.dtype, node: process.version, cpus: cpus().length, cpu: cpus()[0]?.model, date: new Date().toISOString(), runs };
  console.table(runs.map((r) => ({ run: r.label, tensors: r.tensors, shards: r.shards, 'out GB': +(r.outBytes / 1e9).toFixed(3), s: +r.seconds.toFixed(1), 'MB/s': +r.mbPerSecond.toFixed(0), 'MB/CPU-s': +r.mbPerCpuSecond.toFixed(0), 'peak RSS MB': +r.peakRssMB.toFixed(0) })));
  if (values.out) await writeFile(values.out, `${JSON.stringify(report, null, 2)}\n`);
}

await main();
