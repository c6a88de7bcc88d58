/**
 * Image inputs: files dropped on the drop zone, pasted anywhere on the page, or chosen with the
 * file picker. PNG, JPEG, WebP and GIF (the first frame: that is what the browser's decoder
 * gives) go to the model as the File itself, decoded by the library in its worker; PDFs are
 * rendered page by page (pdf.ts) and each page becomes an image, page 1 selected. Every image
 * shows a thumbnail, its size and how many prompt tokens it costs with the loaded model
 * (`sizeForImage` with the model's image size, patch and merge, and the "faster" longest edge).
 */
import { checkImageHeader, sizeForImage, type ModelConfig } from '../src/index.js';
import { byId, el } from './dom.js';
import { renderPdf } from './pdf.js';

export interface TrayImage {
  id: number;
  name: string;
  /** What is handed to `model.chat`: the original File, or a rendered PDF page. */
  source: Blob | HTMLCanvasElement;
  width: number;
  height: number;
  /** Attached to the next question. */
  selected: boolean;
  /** Already part of the conversation (sent with an earlier question). */
  sent: boolean;
  /** Thumbnail URL to revoke, for File sources. */
  objectUrl: string | null;
  row: HTMLLIElement;
  tokens: HTMLElement;
  checkbox: HTMLInputElement;
}

const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/webp', 'image/gif'];
const IMAGE_EXT = /\.(png|jpe?g|webp|gif)$/i;

export function isPdf(f: File): boolean {
  return f.type === 'application/pdf' || /\.pdf$/i.test(f.name);
}

export function isImage(f: File): boolean {
  return IMAGE_TYPES.includes(f.type) || (!f.type && IMAGE_EXT.test(f.name));
}

export class ImageTray {
  private readonly list = byId<HTMLUListElement>('image-list');
  private readonly drop = byId<HTMLElement>('drop-zone');
  private readonly picker = byId<HTMLInputElement>('image-input');
  private readonly status = byId<HTMLElement>('image-status');
  private readonly faster = byId<HTMLInputElement>('faster');
  private readonly fasterLabel = byId<HTMLElement>('faster-label');
  private readonly items: TrayImage[] = [];
  private nextId = 1;
  private config: ModelConfig | null = null;
  private pending = 0;

  constructor() {
    this.picker.addEventListener('change', () => {
      const files = [...(this.picker.files ?? [])];
      this.picker.value = '';
      void this.addFiles(files);
    });
    this.drop.addEventListener('dragover', (e) => {
      e.preventDefault();
      this.drop.classList.add('dragging');
    });
    this.drop.addEventListener('dragleave', () => this.drop.classList.remove('dragging'));
    this.drop.addEventListener('drop', (e) => {
      e.preventDefault();
      this.drop.classList.remove('dragging');
      void this.addFiles([...(e.dataTransfer?.files ?? [])]);
    });
    document.addEventListener('paste', (e) => {
      const files = [...(e.clipboardData?.files ?? [])];
      if (files.length) {
        e.preventDefault();
        void this.addFiles(files);
      }
    });
    this.faster.addEventListener('change', () => this.refreshTokens());
    this.refreshTokens();
  }

  /** The model changed: token counts and the "faster" edge follow its config. */
  setConfig(config: ModelConfig | null): void {
    this.config = config;
    this.refreshTokens();
  }

  /** Longest edge to ask for (undefined: the model's own image size). */
  longestEdge(): number | undefined {
    const full = this.config?.vision.imageSize;
    if (!full || !this.faster.checked) return undefined;
    return fasterEdge(full);
  }

  /** Images attached to the next question. */
  selected(): TrayImage[] {
    return this.items.filter((i) => i.selected && !i.sent);
  }

  /** Ticked images and those already in the conversation: what a one-shot request (extraction) is about. */
  forOneShot(): TrayImage[] {
    return this.items.filter((i) => i.selected || i.sent);
  }

  /** Marks images as part of the conversation. */
  markSent(items: TrayImage[]): void {
    for (const i of items) {
      i.sent = true;
      i.selected = false;
      i.checkbox.checked = false;
      i.row.classList.add('sent');
      i.checkbox.setAttribute('aria-description', 'already in the conversation');
    }
    this.refreshTokens();
  }

  /**
   * A new conversation: images of the old one are attached again to the next question (untick
   * them to leave them out).
   */
  resetSent(): void {
    for (const i of this.items) {
      if (i.sent) {
        i.sent = false;
        i.selected = true;
        i.checkbox.checked = true;
      }
      i.row.classList.remove('sent');
      i.checkbox.removeAttribute('aria-description');
    }
    this.refreshTokens();
  }

  /** A file is being decoded or rendered. */
  get busy(): boolean {
    return this.pending > 0;
  }

  async addFiles(files: File[]): Promise<void> {
    for (const f of files) {
      this.pending++;
      try {
        if (isPdf(f)) await this.addPdf(f);
        else if (isImage(f)) await this.addImage(f);
        else this.say(`${f.name}: not an image or a PDF (PNG, JPEG, WebP, GIF or PDF).`);
      } catch (e) {
        this.say(`${f.name}: could not be read (${e instanceof Error ? e.message : String(e)}).`);
      } finally {
        this.pending--;
      }
    }
  }

  private async addImage(f: File): Promise<void> {
    // The library's size check from the file header first: a file claiming a huge size is
    // refused here, before the browser decodes it on this (the main) thread.
    await checkImageHeader(f);
    const bitmap = await createImageBitmap(f);
    const { width, height } = bitmap;
    bitmap.close();
    const url = URL.createObjectURL(f);
    const thumb = el('img', { attrs: { src: url, alt: `thumbnail of ${f.name}` } });
    this.addItem(f.name, f, width, height, thumb, url, true);
    this.say(`Added ${f.name} (${width}×${height}).`);
  }

  private async addPdf(f: File): Promise<void> {
    this.say(`Rendering ${f.name}…`);
    const edge = this.config?.vision.imageSize ?? 1024;
    const { total, pages } = await renderPdf(f, edge, (p, n) => {
      const c = p.canvas;
      c.setAttribute('role', 'img');
      c.setAttribute('aria-label', `thumbnail of ${f.name} page ${p.page}`);
      this.addItem(`${f.name} · page ${p.page} of ${n}`, c, c.width, c.height, c, null, p.page === 1);
    });
    const more = total > pages.length ? ` (the first ${pages.length} of ${total} pages)` : '';
    this.say(`Added ${f.name}: ${pages.length} page${pages.length === 1 ? '' : 's'}${more}; page 1 is selected, tick the pages to ask about.`);
  }

  private addItem(name: string, source: Blob | HTMLCanvasElement, width: number, height: number, thumb: HTMLElement, objectUrl: string | null, selected: boolean): void {
    const id = this.nextId++;
    const checkbox = el('input', { attrs: { type: 'checkbox', id: `img-${id}` } });
    checkbox.checked = selected;
    const tokens = el('span', { className: 'tokens' });
    const remove = el('button', { text: 'Remove', attrs: { type: 'button', 'aria-label': `Remove ${name}` } });
    const label = el('label', { attrs: { for: `img-${id}` } }, [el('span', { className: 'name', text: name })]);
    const row = el('li', { className: 'image-item' }, [
      el('div', { className: 'thumb' }, [thumb]),
      el('div', { className: 'meta' }, [
        el('div', { className: 'pick' }, [checkbox, label]),
        el('span', { className: 'size', text: `${width}×${height} px` }),
        tokens,
        remove,
      ]),
    ]);
    const item: TrayImage = { id, name, source, width, height, selected, sent: false, objectUrl, row, tokens, checkbox };
    checkbox.addEventListener('change', () => {
      item.selected = checkbox.checked;
      if (item.sent && checkbox.checked) {
        // Already in the conversation: ticking it again attaches it once more.
        item.sent = false;
        row.classList.remove('sent');
      }
    });
    remove.addEventListener('click', () => this.remove(item));
    this.items.push(item);
    this.list.append(row);
    this.refreshTokens();
  }

  private remove(item: TrayImage): void {
    const i = this.items.indexOf(item);
    if (i >= 0) this.items.splice(i, 1);
    item.row.remove();
    if (item.objectUrl) URL.revokeObjectURL(item.objectUrl);
    this.say(`Removed ${item.name}.`);
    this.picker.focus();
  }

  private refreshTokens(): void {
    const c = this.config;
    const full = c?.vision.imageSize;
    this.fasterLabel.textContent = full
      ? `Faster: lower the longest image edge to ${fasterEdge(full)} px (fewer image tokens, less detail; the model's own size is ${full} px)`
      : 'Faster: lower the longest image edge (fewer image tokens, less detail)';
    for (const i of this.items) {
      if (!c) {
        i.tokens.textContent = 'tokens: load a model';
        continue;
      }
      const tokenPx = c.vision.patchSize * c.projector.spatialMergeSize;
      const s = sizeForImage(i.height, i.width, { longestEdge: this.longestEdge() ?? c.vision.imageSize, tokenPx });
      i.tokens.textContent = `${s.tokens} image tokens (${s.cols}×${s.rows} grid)${i.sent ? ' · in the conversation' : ''}`;
    }
  }

  private say(text: string): void {
    this.status.textContent = text;
  }
}

/** The "faster" longest edge: 512 px, or half the model's size when that is smaller. */
export function fasterEdge(imageSize: number): number {
  const tokenHalf = Math.floor(imageSize / 2);
  return Math.min(512, tokenHalf);
}
