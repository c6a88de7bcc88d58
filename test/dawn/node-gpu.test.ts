/**
 * src/node/gpu.ts on the real Dawn instance: adapter listing, selection by index, name and
 * `software`, typed errors for a selection that matches nothing, and for a machine without a
 * Vulkan driver (a child process whose Vulkan loader is pointed at no driver).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { installWebGPU, listAdapters, ADAPTER_ENV } from '../../src/node/gpu.js';
import { WebGPUUnavailableError } from '../../src/errors.js';
import { repoRoot } from '../fixture-server.js';

const adapters = await listAdapters();
const first = adapters[0]!;

async function adapterName(): Promise<string> {
  const a = await navigator.gpu.requestAdapter();
  return a!.info.description || a!.info.device;
}

describe('node WebGPU install (Dawn)', () => {
  // Back to the selection the setup made, for anything after this file in the same worker.
  afterAll(() => installWebGPU());

  it('lists the adapters Dawn sees, each with its backend', () => {
    expect(adapters.length).toBeGreaterThan(0);
    for (const a of adapters) {
      expect(a.name).not.toBe('');
      expect(['vulkan', 'metal', 'd3d12', 'd3d11', 'opengl', 'opengles', 'webgpu', 'null']).toContain(a.backend);
    }
  });

  it('installs navigator.gpu and the WebGPU globals; a device from it runs', async () => {
    const w = await installWebGPU();
    expect(navigator.gpu).toBe(w.gpu);
    expect(typeof GPUBufferUsage.STORAGE).toBe('number');
    const device = await (await navigator.gpu.requestAdapter())!.requestDevice();
    const buf = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(buf, 0, new Uint32Array([1, 2, 3, 4]));
    await buf.mapAsync(GPUMapMode.READ);
    expect([...new Uint32Array(buf.getMappedRange())]).toEqual([1, 2, 3, 4]);
    device.destroy();
  });

  it('hands out a fresh adapter per request (an adapter makes one device)', async () => {
    await installWebGPU();
    const a = await navigator.gpu.requestAdapter();
    const b = await navigator.gpu.requestAdapter();
    expect(a).not.toBe(b);
    (await a!.requestDevice()).destroy();
    (await b!.requestDevice()).destroy();
  });

  it('picks an adapter by index and by part of its name', async () => {
    const byIndex = await installWebGPU({ adapter: 0 });
    expect(byIndex.selection).toBe(`index 0: ${first.name}`);
    const name = await adapterName();
    const part = first.name.split(' ')[0]!;
    const byName = await installWebGPU({ adapter: part });
    expect(byName.selection).toBe(`name "${part}"`);
    expect(await adapterName()).toBe(name);
  });

  it.skipIf(!adapters.some((a) => /llvmpipe|lavapipe|swiftshader/i.test(a.name)))('`software` picks the CPU adapter', async () => {
    const w = await installWebGPU({ adapter: 'software' });
    expect(w.info.isFallbackAdapter).toBe(true);
  });

  it('a name or index that matches nothing is a WebGPUUnavailableError naming it and listing the adapters', async () => {
    const byName = await installWebGPU({ adapter: 'no-such-gpu-xyz' }).catch((e: unknown) => e);
    expect(byName).toBeInstanceOf(WebGPUUnavailableError);
    expect((byName as Error).message).toContain('"no-such-gpu-xyz"');
    expect((byName as Error).message).toContain(first.name);
    const byIndex = await installWebGPU({ adapter: adapters.length + 3 }).catch((e: unknown) => e);
    expect(byIndex).toBeInstanceOf(WebGPUUnavailableError);
    expect((byIndex as Error).message).toContain(`${ADAPTER_ENV}/adapter = ${adapters.length + 3}`);
    expect((byIndex as Error).message).toContain(first.name);
  });

  it.runIf(process.platform === 'linux')('a machine without a usable Vulkan driver gets WebGPUUnavailableError saying what to install', async () => {
    const script = `import { installWebGPU } from ${JSON.stringify(resolve(repoRoot, 'src/node/gpu.ts'))};
      installWebGPU().then(() => console.log('INSTALLED'), (e) => console.log('ERROR', e.name, e.message));`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: repoRoot,
      // Dawn's other backends (OpenGL ES via EGL) find nothing usable here either.
      env: { ...process.env, VK_ICD_FILENAMES: resolve(repoRoot, 'no-such-icd.json'), [ADAPTER_ENV]: '' },
      timeout: 60_000,
    });
    expect(stdout).toMatch(/^ERROR WebGPUUnavailableError .*no usable WebGPU adapter/m);
    expect(stdout).toContain('mesa-vulkan-drivers');
  });
});
