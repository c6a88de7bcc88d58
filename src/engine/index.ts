/** The engine: one model on one GPU, the same in a worker and in-thread. */
export { Engine } from './engine.js';
export type * from './types.js';
