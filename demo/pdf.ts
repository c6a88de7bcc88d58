/**
 * PDF pages to canvases for the image tray, with the library's pdf.js renderer
 * (`openBrowserPdf`: parsing in pdf.js's own Web Worker, imported on first use; its worker file is
 * emitted by Vite and precached by the service worker).
 *
 * Render scale: a page is drawn at 1 CSS pixel per PDF point, enlarged (up to 3x) when the
 * model's longest image edge is larger than the page, so the model sees as much detail as it can
 * use and a page that is already big enough is not blown up.
 */
import { openBrowserPdf } from '../src/index.js';

export interface RenderedPage {
  /** 1-based page number. */
  page: number;
  canvas: HTMLCanvasElement;
}

/** At most this many pages of one document are rendered (the rest are reported, not drawn). */
export const MAX_PAGES = 30;

/** Scale for a page of `w` x `h` points given the model's longest edge in pixels. */
export function renderScale(w: number, h: number, longestEdge: number): number {
  const side = Math.max(w, h);
  if (!(side > 0)) return 1;
  return Math.min(3, Math.max(1, longestEdge / side));
}

/**
 * Renders the pages of `file` (all of them up to MAX_PAGES) to canvases. `onPage` sees each as it
 * is drawn, so thumbnails appear while later pages render.
 */
export async function renderPdf(
  file: Blob,
  longestEdge: number,
  onPage?: (p: RenderedPage, total: number) => void,
): Promise<{ pages: RenderedPage[]; total: number }> {
  const pdf = await openBrowserPdf(new Uint8Array(await file.arrayBuffer()), (file as File).name || 'PDF');
  const pages: RenderedPage[] = [];
  try {
    const n = Math.min(pdf.pageCount, MAX_PAGES);
    for (let i = 1; i <= n; i++) {
      const size = await pdf.pageSize(i);
      const canvas = (await pdf.draw(i, renderScale(size.width, size.height, longestEdge))) as HTMLCanvasElement;
      const p = { page: i, canvas };
      pages.push(p);
      onPage?.(p, pdf.pageCount);
    }
    return { pages, total: pdf.pageCount };
  } finally {
    await pdf.close();
  }
}
