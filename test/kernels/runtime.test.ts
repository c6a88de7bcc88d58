import { describe, expect, it } from 'vitest';
import { Gpu } from '../../src/gpu/device.js';
import { cacheKey, defineKernel, dispatch, record } from '../../src/gpu/kernel.js';
import { Tensor, createBuffer, readBuffer, splitRows } from '../../src/gpu/tensor.js';
import { addInPlace, addKernel } from '../../src/kernels/add.js';
import { DeviceLostError, KernelError, LimitError } from '../../src/errors.js';
import { getGpu } from '../helpers/gpu.js';

const GOOD = `
struct Params { n: u32 }
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<uniform> p: Params;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x < p.n) { x[gid.x] = x[gid.x] + 1.0; }
}
`;

function kernel(name: string, source: string, uniforms: Record<string, 'u32'> = { n: 'u32' }) {
  return defineKernel({
    name,
    source,
    bindings: [{ name: 'x', access: 'write' }],
    uniforms,
    specialize: (_: Record<string, never>) => ({}),
  });
}

/** Two paths into the same uncaptured-error handler: check() right away, or sync(). */
async function expectKernelError(gpu: Gpu, name: string, via: 'check' | 'sync', atRecord?: () => void) {
  let err: unknown;
  try {
    // Dawn in Node may deliver the validation error while the submit is still on the stack, so
    // `record` itself throws; Chromium delivers it later, to check()/sync(). Either is the contract.
    atRecord?.();
    if (via === 'sync') await gpu.sync();
    else {
      // check() is synchronous: it reports what the browser has delivered so far. Poll it.
      for (let i = 0; i < 200; i++) {
        gpu.check();
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(KernelError);
  expect((err as KernelError).kernel).toBe(name);
  gpu.check(); // reported once, then cleared
}

describe('GPU runtime', () => {
  it('a WGSL compile error surfaces as a KernelError naming the kernel (compile and dispatch)', async () => {
    const gpu = await getGpu();
    const broken = kernel('broken_compile', GOOD.replace('x[gid.x] + 1.0', 'x[gid.x] + undefined_thing'));
    const err = await gpu.pipelines.compile(broken, {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KernelError);
    expect((err as KernelError).kernel).toBe('broken_compile');
    expect((err as Error).message).toMatch(/undefined_thing/);
    // The compiler's line number is the line in the .wgsl source (the preprocessor keeps lines).
    const line = GOOD.split('\n').findIndex((l) => l.includes('+ 1.0')) + 1;
    expect((err as Error).message).toMatch(new RegExp(`^kernel "broken_compile": ${line}:`));

    // Preprocessor errors are KernelErrors too.
    const unterminated = kernel('broken_pp', `#if F16\n${GOOD}`);
    await expect(gpu.pipelines.compile(unterminated, {})).rejects.toThrow(KernelError);

    // The synchronous path (first dispatch compiles) reports through check()/sync().
    const buf = Tensor.empty(gpu, [64], 'f32', 'x');
    const broken2 = kernel('broken_sync', GOOD.replace('+ 1.0', '+ nope'));
    await expectKernelError(gpu, 'broken_sync', 'sync', () =>
      record(gpu, 'broken', (ctx) => dispatch(gpu, ctx.pass, broken2, {}, { buffers: [buf.buffer], uniforms: { n: 64 }, workgroups: [1] })),
    );
    buf.destroy();
  });

  it('a bad binding surfaces as a KernelError on the next check()/sync(), not a hang', async () => {
    const gpu = await getGpu();
    // Uniform struct larger than the bound slice: the descriptor declares 1 field (16-byte slice),
    // the WGSL struct 8 u32 (32 bytes).
    const big = kernel('bad_uniform', GOOD.replace('struct Params { n: u32 }', 'struct Params { n: u32, a: u32, b: u32, c: u32, d: u32, e: u32, f: u32, g: u32 }'));
    const x = Tensor.empty(gpu, [64], 'f32', 'x');
    await expectKernelError(gpu, 'bad_uniform', 'sync', () =>
      record(gpu, 'bad-uniform', (ctx) => dispatch(gpu, ctx.pass, big, {}, { buffers: [x.buffer], uniforms: { n: 64 }, workgroups: [1] })),
    );

    // Wrong usage: a MAP_READ buffer bound as storage.
    const ok = kernel('wrong_usage', GOOD);
    const mapped = createBuffer(gpu, 256, 'mappable', GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    await expectKernelError(gpu, 'wrong_usage', 'check', () =>
      record(gpu, 'bad-usage', (ctx) => dispatch(gpu, ctx.pass, ok, {}, { buffers: [mapped], uniforms: { n: 64 }, workgroups: [1] })),
    );
    mapped.destroy();

    // The runtime still works afterwards.
    const y = Tensor.from(gpu, new Float32Array(64).fill(1), [64], 'f32', 'y');
    record(gpu, 'add', (ctx) => addInPlace(ctx, x, y));
    expect(Array.from(await x.read())).toEqual(new Array(64).fill(1));
    x.destroy();
    y.destroy();
  });

  it('device loss: sync() and readBuffer reject with DeviceLostError instead of hanging; Gpu.create() works again', async () => {
    for (const how of ['gpu.destroy', 'device.destroy'] as const) {
      const gpu = await Gpu.create();
      const x = Tensor.from(gpu, new Float32Array(256).fill(2), [256], 'f32', 'x');
      expect(Array.from(await x.read()).slice(0, 2)).toEqual([2, 2]);
      if (how === 'gpu.destroy') gpu.destroy();
      else gpu.device.destroy();
      // Each of these rejects instead of hanging (a hang fails the test by its timeout).
      await expect(gpu.sync()).rejects.toBeInstanceOf(DeviceLostError);
      await expect(readBuffer(gpu, x.buffer, 0, 16)).rejects.toBeInstanceOf(DeviceLostError);
      await expect(x.read()).rejects.toBeInstanceOf(DeviceLostError);
      expect(() => record(gpu, 'after-loss', (ctx) => addInPlace(ctx, x, x))).toThrow(DeviceLostError);
      expect(gpu.isLost).toBe(true);
      const err = await gpu.lost;
      expect(err.reason).toBe('destroyed');
    }
    // Re-creation after loss.
    const fresh = await Gpu.create();
    const a = Tensor.from(fresh, Float32Array.from([1, 2, 3]), [3], 'f32', 'a');
    const b = Tensor.from(fresh, Float32Array.from([10, 20, 30]), [3], 'f32', 'b');
    record(fresh, 'add', (ctx) => addInPlace(ctx, a, b));
    expect(Array.from(await a.read())).toEqual([11, 22, 33]);
    await fresh.sync();
    fresh.destroy();
  });

  it('splitRows: parts cover the rows in order, fit the limit, respect rowMultiple', () => {
    // The real f16 lm_head: 131072 x 5120 x 2 B = 1.34 GB over a 1 GiB binding -> 2 parts.
    const lm = splitRows(131072, 5120 * 2, 2 ** 30);
    expect(lm).toEqual([
      { rowStart: 0, rows: 104857 },
      { rowStart: 104857, rows: 26215 },
    ]);
    for (const [rows, bpr, max, mult] of [
      [1000, 12, 1200, 1],
      [1000, 12, 1200, 8],
      [7, 4, 4, 1],
      [5, 100, 10_000, 4],
      [1, 3, 3, 1],
      [12345, 64, 65536, 16],
    ] as const) {
      const parts = splitRows(rows, bpr, max, mult);
      let next = 0;
      parts.forEach((p, i) => {
        expect(p.rowStart).toBe(next);
        expect(p.rows).toBeGreaterThan(0);
        expect(p.rows * bpr).toBeLessThanOrEqual(max);
        if (i < parts.length - 1) expect(p.rows % mult).toBe(0);
        next += p.rows;
      });
      expect(next).toBe(rows);
      // As few parts as the limit allows.
      const per = Math.floor(max / bpr / mult) * mult;
      expect(parts.length).toBe(Math.ceil(rows / Math.min(per, rows)));
    }
    expect(splitRows(0, 16, 64)).toEqual([]);
    expect(() => splitRows(10, 100, 99)).toThrow(LimitError);
    // rowMultiple larger than what fits: cannot make a part.
    expect(() => splitRows(64, 16, 16 * 7, 8)).toThrow(LimitError);
  });

  it('pipeline cache: same kernel + knobs hits, different knobs miss', async () => {
    const gpu = await getGpu();
    const k = defineKernel({
      name: 'cache_probe',
      source: `#if F16\nbad on purpose\n#endif\n${GOOD.replace('@workgroup_size(64)', '@workgroup_size(WG)').replace('struct Params', 'override WG: u32 = 64;\nstruct Params')}`,
      bindings: [{ name: 'x', access: 'write' }],
      uniforms: { n: 'u32' },
      specialize: (kn: { wg: number; tag: string }) => ({ overrides: { WG: kn.wg } }),
    });
    const before = gpu.pipelines.size;
    const a = gpu.pipelines.get(k, { wg: 64, tag: 'a' });
    expect(gpu.pipelines.size).toBe(before + 1);
    expect(gpu.pipelines.get(k, { wg: 64, tag: 'a' })).toBe(a);
    expect(gpu.pipelines.get(k, { tag: 'a', wg: 64 })).toBe(a); // key order does not matter
    const b = gpu.pipelines.get(k, { wg: 32, tag: 'a' });
    const c = gpu.pipelines.get(k, { wg: 64, tag: 'b' });
    expect(b).not.toBe(a);
    expect(c).not.toBe(a);
    expect(b.pipeline).not.toBe(a.pipeline);
    expect(gpu.pipelines.size).toBe(before + 3);
    await gpu.pipelines.compile(k, { wg: 64, tag: 'a' }); // already cached: no new entry
    expect(gpu.pipelines.size).toBe(before + 3);
    await gpu.pipelines.compile(k, { wg: 128, tag: 'a' });
    expect(gpu.pipelines.size).toBe(before + 4);
    expect(cacheKey('k', { b: 1, a: true })).toBe(cacheKey('k', { a: true, b: 1 }));
    expect(cacheKey('k', { a: 1 })).not.toBe(cacheKey('k', { a: 2 }));
    // A real kernel of the library: a second get is a hit (same entry, no new one).
    const add = gpu.pipelines.get(addKernel, { dtype: 'f32' });
    const afterAdd = gpu.pipelines.size;
    expect(gpu.pipelines.get(addKernel, { dtype: 'f32' })).toBe(add);
    expect(gpu.pipelines.size).toBe(afterAdd);
    // Every pipeline above is valid: nothing was reported.
    await gpu.sync();
  });
});

describe('runtime ledger, bind-group reuse and pipeline planning', () => {
  it('counts live and peak buffer bytes, each destroy once, and the peak by kind of buffer', async () => {
    const gpu = await getGpu();
    const l = gpu.ledger;
    const live0 = l.liveBytes;
    l.resetPeak();
    const a = createBuffer(gpu, 1000, 'ledger.a'); // rounded to 1000 (a multiple of 4)
    const b = createBuffer(gpu, 4096, 'ledger.layers.1.b');
    const c = createBuffer(gpu, 2048, 'ledger.layers.12.b');
    expect(l.liveBytes - live0).toBe(7144);
    a.destroy();
    a.destroy(); // a second destroy is not counted again
    expect(l.liveBytes - live0).toBe(6144);
    expect(l.peakBytes - live0).toBe(7144);
    // At the peak, by kind (digits as '#'), largest first.
    const kinds = l.peakKinds(100).filter((k) => k.kind.startsWith('ledger.'));
    expect(kinds).toEqual([{ kind: 'ledger.layers.#.b', bytes: 6144 }, { kind: 'ledger.a', bytes: 1000 }]);
    b.destroy();
    c.destroy();
    expect(l.liveBytes).toBe(live0);
  });

  it('makes a bind group once for the same buffers and uniform slice, and counts dispatches', async () => {
    const gpu = await getGpu();
    const x = Tensor.from(gpu, new Float32Array([1, 2, 3]), [3], 'f32', 'x');
    const y = Tensor.from(gpu, new Float32Array([10, 20, 30]), [3], 'f32', 'y');
    const l = gpu.ledger;
    record(gpu, 'warm', (ctx) => addInPlace(ctx, x, y));
    const [groups, dispatches] = [l.bindGroupsCreated, l.dispatches];
    // Each record is one submit: the arena hands out the same slice, so the group is reused.
    for (let i = 0; i < 3; i++) record(gpu, 'again', (ctx) => addInPlace(ctx, x, y));
    expect(l.bindGroupsCreated).toBe(groups);
    expect(l.dispatches - dispatches).toBe(3);
    // The uniform values still arrive through the reused slice: 1 + 4 x 10, etc.
    expect(Array.from((await x.read()) as Float32Array)).toEqual([41, 82, 123]);
    const z = Tensor.from(gpu, new Float32Array([1, 1, 1]), [3], 'f32', 'z');
    record(gpu, 'other', (ctx) => addInPlace(ctx, x, z));
    expect(l.bindGroupsCreated).toBe(groups + 1); // other buffers: a new group
    for (const t of [x, y, z]) t.destroy();
  });

  it('plan() records nothing, then compiles what the recording needed', async () => {
    const gpu = await getGpu();
    const kernel = defineKernel({ ...addKernel, name: 'add_planned' });
    const x = Tensor.from(gpu, new Float32Array([1, 2]), [2], 'f32', 'x');
    const y = Tensor.from(gpu, new Float32Array([3, 4]), [2], 'f32', 'y');
    const before = { size: gpu.pipelines.size, dispatches: gpu.ledger.dispatches };
    const progress: [number, number][] = [];
    const n = await gpu.pipelines.plan(() => {
      const enc = gpu.device.createCommandEncoder();
      const pass = enc.beginComputePass();
      dispatch(gpu, pass, kernel, { dtype: 'f32' }, { buffers: [x.buffer, y.buffer], uniforms: { n: 2 }, workgroups: [1] });
      pass.end();
    }, (done, total) => progress.push([done, total]));
    expect(n).toBe(1);
    expect(progress).toEqual([[0, 1], [1, 1]]);
    expect(gpu.ledger.dispatches).toBe(before.dispatches);
    expect(gpu.pipelines.size).toBe(before.size + 1);
    record(gpu, 'run', (ctx) => dispatch(gpu, ctx.pass, kernel, { dtype: 'f32' }, { buffers: [x.buffer, y.buffer], uniforms: { n: 2 }, workgroups: [1] }));
    expect(gpu.pipelines.size).toBe(before.size + 1); // found built
    expect(Array.from((await x.read()) as Float32Array)).toEqual([4, 6]);
    x.destroy();
    y.destroy();
  });
});
