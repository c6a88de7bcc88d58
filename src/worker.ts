/** The module Web Worker: exposes one `Engine` over comlink, and nothing else. */
import * as Comlink from 'comlink';
import { Engine } from './engine/index.js';
import { installHandlers } from './worker/comlink-handlers.js';

installHandlers();
Comlink.expose(new Engine());
