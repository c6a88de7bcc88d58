/**
 * WebGPU for Node from Dawn: loads the `webgpu` npm package (dawn.node) from the directory in
 * WEBGPU_PACKAGE (it is not a project dependency) and installs `navigator.gpu` and the WebGPU
 * globals (GPUBufferUsage, GPUBuffer, ...). bench/node.ts imports this first, before any module
 * that reads those globals at load time.
 */
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

interface DawnPackage {
  create(flags: string[]): GPU;
  globals: Record<string, unknown>;
}

const dir = process.env.WEBGPU_PACKAGE;
if (!dir) throw new Error('set WEBGPU_PACKAGE to the directory of the `webgpu` npm package (dawn.node)');
const binary = join(resolve(dir), 'dist', `${process.platform}-${process.arch}`, 'dawn.node');
const dawn = createRequire(import.meta.url)(binary) as DawnPackage;
Object.assign(globalThis, dawn.globals);
const flags = (process.env.DAWN_FLAGS ?? 'enable-dawn-features=allow_unsafe_apis,disable-dawn-features=timestamp_quantization')
  .split(' ')
  .filter(Boolean);
Object.defineProperty(globalThis, 'navigator', { value: { gpu: dawn.create(flags), userAgent: 'node' }, configurable: true });
