/**
 * The model behind `serve`: loaded in this process on Dawn through the Node entry
 * (`pixtral-webgpu/node`'s `loadPixtral`: a local folder read in place, or a URL cached on disk),
 * wrapped in the OpenAI facade. Image bytes from `data:` URLs go to the Node entry's decoder
 * (sharp) as they are.
 */
import { engineFromModel, type ChatBackend } from '../../src/openai/local.js';
import type { ChatEngine } from '../../src/openai/types.js';
import type { ServeArgs } from '../serve.js';

interface NodeEntry {
  loadPixtral(opts: { url: string; maxContext?: number; adapter?: string }): Promise<ChatBackend>;
}

// Resolved at run time: the Node entry lands separately (see the report); a missing entry is a
// load error with its message.
const NODE_ENTRY = '../../src/node/index.js';

export async function loadServedModel(args: Pick<ServeArgs, 'model' | 'maxContext' | 'adapter' | 'allowRemoteImages'>): Promise<ChatEngine> {
  const { loadPixtral } = (await import(NODE_ENTRY)) as NodeEntry;
  const model = await loadPixtral({ url: args.model, maxContext: args.maxContext, adapter: args.adapter });
  return engineFromModel(model, { allowRemoteImages: args.allowRemoteImages, imageFromBytes: (bytes) => bytes });
}
