/**
 * Entry of the demo page: runs the capability checks, registers the service worker, wires the
 * panels (model loader, image tray, chat, cache panel) and loads the embedded model when WebGPU
 * is there. Also exposes `window.pixtralDemo`, a small API used by the end-to-end tests (and
 * handy in the console) to wait for the model and ask questions without the UI.
 */
import './style.css';
import { engineFromModel, type ChatEngine, type ChatOptions, type GenerationStats, type PixtralModel } from '../src/index.js';
import { checkCapabilities } from './capabilities.js';
import { CachePanel } from './cache-panel.js';
import { Chat, type Turn } from './chat.js';
import { byId, renderMessages } from './dom.js';
import { ExtractPanel, type Extraction } from './extract.js';
import { ImageTray } from './images.js';
import { DocumentPanel } from './document.js';
import { ModelLoader } from './loader.js';
import { RemoteSettings } from './remote.js';
import { readStream } from './stream.js';
import { registerServiceWorker, type OfflineState } from './sw-register.js';

export interface DemoApi {
  /** Resolves once the first automatic load has finished (successfully or not). */
  ready: Promise<void>;
  model(): PixtralModel | null;
  /** Asks through the UI (selected images, streaming, stats); resolves with the finished turn. */
  ask(question: string): Promise<Turn>;
  /** One image + one question as a fresh single message, greedy; the UI conversation is untouched. */
  answerImage(image: Blob, question: string, opts?: ChatOptions): Promise<{ text: string; stats: GenerationStats }>;
  offline(): OfflineState;
  /** Runs "Extract as JSON" with what its panel holds. */
  extract(): Promise<Extraction>;
}

declare global {
  interface Window {
    pixtralDemo: DemoApi;
  }
}

const OFFLINE_TEXT: Record<OfflineState, string> = {
  unsupported: 'This browser has no service workers: the page needs the network on each visit.',
  dev: 'Development server: offline support is only in the built site (npm run build).',
  installing: 'Preparing offline use…',
  ready: 'Works offline: the page is cached, and loaded models stay in the browser cache.',
  failed: 'Offline support could not be set up',
};

async function main(): Promise<void> {
  let offlineState: OfflineState = 'installing';
  const offlineBox = byId('offline-status');
  void registerServiceWorker((state, detail) => {
    offlineState = state;
    offlineBox.textContent = OFFLINE_TEXT[state] + (detail ? `: ${detail}` : '');
  });

  const capsBox = byId('capabilities');
  capsBox.textContent = 'Checking WebGPU…';
  const caps = await checkCapabilities();
  renderMessages(capsBox, caps.messages);

  const tray = new ImageTray();
  const documentPanel = new DocumentPanel();
  const chat = new Chat(tray);
  let model: PixtralModel | null = null;
  let modelUrl: string | null = null;
  const cache = new CachePanel(() => modelUrl);
  const modelInfo = byId('model-info');

  const loader = new ModelLoader(caps, {
    beforeLoad: async () => {
      const old = model;
      model = null;
      modelUrl = null;
      if (!remote.active) chat.setModel(null);
      documentPanel.setModel(null);
      tray.setConfig(null);
      modelInfo.textContent = '';
      await old?.dispose();
    },
    loaded: (m, url) => {
      model = m;
      modelUrl = url;
      tray.setConfig(m.info.config);
      chat.setModel(remote.active?.target ?? m);
      documentPanel.setModel(m);
      const i = m.info;
      modelInfo.textContent =
        `${i.name}: ${i.modelType}, ${i.dtype} weights, images up to ${i.config.vision.imageSize} px ` +
        `(${i.tokenPixels} px per image token), context ${i.maxContext} tokens, on ${i.adapter.description || i.adapter.vendor || 'the GPU'}` +
        `: f32 activations, ${i.kvCache} KV cache.`;
      void cache.refresh();
    },
    cacheChanged: () => void cache.refresh(),
  });
  void cache.refresh();

  // Chat and extraction go to the remote server when one is chosen, else to the loaded model.
  const remote = new RemoteSettings(byId('remote-settings'), (r) => chat.setModel(r?.target ?? model));
  let local: { model: PixtralModel; engine: ChatEngine } | null = null;
  const engine = (): ChatEngine | null => {
    if (remote.active) return remote.active.engine;
    if (model && local?.model !== model) local = { model, engine: engineFromModel(model) };
    return model ? local!.engine : null;
  };
  const extract = new ExtractPanel(byId('extract'), tray, engine);

  // ?model=<url> only preselects a model and says what it would download: Load starts it.
  const params = new URLSearchParams(location.search);
  const autoload = params.get('autoload') !== '0' && !params.has('model');
  const ready = caps.webgpu && caps.adapter && autoload ? loader.load().then(() => undefined) : Promise.resolve();

  window.pixtralDemo = {
    ready,
    model: () => model,
    ask: (q) => chat.send(q),
    answerImage: async (image, question, opts = {}) => {
      if (!model) throw new Error('no model loaded');
      let text = '';
      const stream = model.chat([{ role: 'user', content: [{ type: 'image', image }, { type: 'text', text: question }] }], { temperature: 0, ...opts });
      const stats = await readStream(stream, (d) => (text += d));
      return { text, stats };
    },
    offline: () => offlineState,
    extract: () => extract.extract(),
  };
  document.body.dataset.ready = 'true';
}

main().catch((e) => {
  const box = document.getElementById('capabilities');
  if (box) box.textContent = `The demo failed to start: ${e instanceof Error ? e.message : String(e)}`;
  throw e;
});
