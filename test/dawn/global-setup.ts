/**
 * Main-process setup of the `dawn` project: converts the fixture models with the project's own
 * converter (as the browser project does) and serves `/shared/` and `/scratch/` from a real
 * `node:http` server on a free localhost port, so golden tests load weights over HTTP through the
 * real loader exactly as in the browser. The server's origin reaches the test workers through
 * `inject('fixtureOrigin')`; `adapterMarker` is the file whose creation elects the one worker that
 * prints the adapter line of this run.
 */
import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import type { TestProject } from 'vitest/node';
import { convertFixtureModels } from '../global-setup.js';
import { listenFixtures, scratchDir } from '../fixture-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    adapterMarker: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await convertFixtureModels();
  const server = await listenFixtures();
  project.provide('fixtureOrigin', server.origin);
  const marker = resolve(scratchDir, `dawn-adapter-${process.pid}-${Date.now()}.printed`);
  project.provide('adapterMarker', marker);
  return async () => {
    rmSync(marker, { force: true });
    await server.close();
  };
}
