/**
 * The cache panel: models stored in IndexedDB (`listCachedModels`) with their sizes and whether
 * they are complete, a Delete button for each (`deleteCachedModel`), and the origin's storage
 * used, its quota and whether it is persistent (`storageUsage`), with a button to ask the
 * browser for persistent storage.
 */
import { deleteCachedModel, listCachedModels, storageUsage } from '../src/index.js';
import { byId, el } from './dom.js';
import { formatBytes, formatPercent } from './format.js';

export class CachePanel {
  private readonly list = byId<HTMLUListElement>('cache-list');
  private readonly usage = byId<HTMLElement>('storage-usage');
  private readonly refreshButton = byId<HTMLButtonElement>('cache-refresh');
  private readonly persistButton = byId<HTMLButtonElement>('storage-persist');
  private readonly status = byId<HTMLElement>('cache-status');

  /** `inUse`: base URL of the loaded model (its entry says so; deleting it is still allowed). */
  constructor(private readonly inUse: () => string | null) {
    this.refreshButton.addEventListener('click', () => void this.refresh());
    this.persistButton.addEventListener('click', () => void this.persist());
  }

  async refresh(): Promise<void> {
    try {
      const [models, usage] = await Promise.all([listCachedModels(), storageUsage()]);
      const current = this.inUse();
      this.list.replaceChildren(
        ...models.map((m) => {
          const del = el('button', { text: 'Delete', attrs: { type: 'button', 'aria-label': `Delete ${m.name} from the cache` } });
          del.addEventListener('click', () => void this.remove(m.manifestHash, m.name));
          const state = m.complete ? 'complete' : `incomplete: ${formatBytes(m.bytes)} of ${formatBytes(m.totalBytes)}, Load again to resume`;
          return el('li', { className: 'cache-item' }, [
            el('span', { className: 'name', text: m.name }),
            el('span', { className: 'size', text: `${formatBytes(m.bytes)} · ${state}${current === m.url ? ' · loaded now' : ''}` }),
            el('span', { className: 'url', text: m.url }),
            del,
          ]);
        }),
      );
      if (!models.length) this.list.append(el('li', { className: 'empty', text: 'No model is cached yet.' }));
      const quota = usage.quotaBytes > 0 ? ` of ${formatBytes(usage.quotaBytes)} (${formatPercent(usage.usedBytes / usage.quotaBytes)})` : '';
      this.usage.textContent =
        `Storage used: ${formatBytes(usage.usedBytes)}${quota}. ` +
        (usage.persisted
          ? 'Storage is persistent: the browser will not evict it under pressure.'
          : 'Storage is not persistent: the browser may evict cached models when disk space runs low.');
      this.persistButton.hidden = usage.persisted || !navigator.storage?.persist;
    } catch (e) {
      this.status.textContent = `Could not read the cache: ${e instanceof Error ? e.message : String(e)}`;
    }
  }

  private async remove(hash: string, name: string): Promise<void> {
    try {
      await deleteCachedModel(hash);
      this.status.textContent = `Deleted ${name} from the cache.`;
    } catch (e) {
      this.status.textContent = `Could not delete ${name}: ${e instanceof Error ? e.message : String(e)}`;
    }
    await this.refresh();
    this.refreshButton.focus();
  }

  private async persist(): Promise<void> {
    const ok = await navigator.storage.persist().catch(() => false);
    this.status.textContent = ok ? 'The browser granted persistent storage.' : 'The browser declined persistent storage (it may grant it after more visits, or for an installed app).';
    await this.refresh();
  }
}
