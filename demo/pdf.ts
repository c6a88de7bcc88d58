/**
 * PDF pages to canvases with pdf.js (`pdfjs-dist`), parsing in pdf.js's own Web Worker (off the
 * main thread; the worker file is emitted by Vite and precached by the service worker). pdf.js is
 * imported lazily, the first time a PDF is added.
 *
 * Render scale: a page is drawn at 1 CSS pixel per PDF point, enlarged (up to 3x) when the
 * model's longest image edge is larger than the page, so the model sees as much detail as it can
 * use and a page that is already big enough is not blown up.
 */

export interface RenderedPage {
  /** 1-based page number. */
  page: number;
  canvas: HTMLCanvasElement;
}

/** At most this many pages of one document are rendered (the rest are reported, not drawn). */
export const MAX_PAGES = 30;

type PdfJs = typeof import('pdfjs-dist');
let pdfjs: Promise<PdfJs> | null = null;

function loadPdfJs(): Promise<PdfJs> {
  pdfjs ??= (async () => {
    const [lib, worker] = await Promise.all([import('pdfjs-dist'), import('pdfjs-dist/build/pdf.worker.min.mjs?url')]);
    lib.GlobalWorkerOptions.workerSrc = worker.default;
    return lib;
  })();
  return pdfjs;
}

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
  const lib = await loadPdfJs();
  const data = new Uint8Array(await file.arrayBuffer());
  const doc = await lib.getDocument({ data, isEvalSupported: false }).promise;
  const pages: RenderedPage[] = [];
  try {
    const n = Math.min(doc.numPages, MAX_PAGES);
    for (let i = 1; i <= n; i++) {
      const page = await doc.getPage(i);
      const base = page.getViewport({ scale: 1 });
      const viewport = page.getViewport({ scale: renderScale(base.width, base.height, longestEdge) });
      const canvas = document.createElement('canvas');
      canvas.width = Math.max(1, Math.round(viewport.width));
      canvas.height = Math.max(1, Math.round(viewport.height));
      const ctx = canvas.getContext('2d');
      if (!ctx) throw new Error('no 2D canvas context');
      // PDF pages have no background of their own: white, like a viewer shows them.
      ctx.fillStyle = '#fff';
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      await page.render({ canvas, viewport }).promise;
      page.cleanup();
      const p = { page: i, canvas };
      pages.push(p);
      onPage?.(p, doc.numPages);
    }
    return { pages, total: doc.numPages };
  } finally {
    await doc.destroy();
  }
}
