/**
 * The module Web Worker: exposes one `Engine` over comlink, and holds a Web Lock named after
 * itself for its whole life, so the main thread notices when it stops (`worker/life.ts`).
 */
import * as Comlink from 'comlink';
import { Engine } from './engine/index.js';
import { installHandlers } from './worker/comlink-handlers.js';
import { holdWorkerLife } from './worker/life.js';

installHandlers();
holdWorkerLife(self.name);
Comlink.expose(new Engine());
