/** The OpenAI-compatible facade: `createEngine` and `engine.chat.completions.create`. */
export { createEngine, type CreateEngineOptions, type LocalCreateOptions } from './create.js';
export { engineFromModel, type ChatBackend, type LocalEngineOptions } from './local.js';
export { parseChatRequest, type ChatRequest } from './request.js';
export type * from './types.js';
