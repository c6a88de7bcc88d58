/**
 * The model behind `serve`: loaded in this process on Dawn through the Node entry
 * (`pixtral-webgpu/node`'s `loadPixtral`: a local folder read in place, or a URL cached on disk),
 * wrapped in the OpenAI facade. Image bytes from `data:` URLs (and, with
 * `--allow-remote-images`, fetched ones) go to the Node entry's decoder as bytes, never as a path
 * (a request must not name files on the server).
 */
import { loadPixtral } from '../../src/node/index.js';
import { engineFromModel } from '../../src/openai/local.js';
import type { ChatEngine } from '../../src/openai/types.js';
import type { ServeArgs } from '../serve.js';

export async function loadServedModel(args: Pick<ServeArgs, 'model' | 'mmproj' | 'maxContext' | 'visionWeights' | 'adapter' | 'allowRemoteImages'>): Promise<ChatEngine> {
  const model = await loadPixtral({ url: args.model, mmproj: args.mmproj, maxContext: args.maxContext, visionWeights: args.visionWeights, adapter: args.adapter });
  return engineFromModel(model, { allowRemoteImages: args.allowRemoteImages, imageFromBytes: (bytes) => bytes });
}
