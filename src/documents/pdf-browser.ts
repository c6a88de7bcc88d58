/**
 * PDFs in the browser with pdf.js (`pdfjs-dist`), parsing in pdf.js's own Web Worker (off the
 * main thread), imported on first use. Pages are drawn on a canvas over white (PDF pages have no
 * background of their own) at a chosen scale. Used by `askDocument` and by the demo.
 */
import { ImageError } from '../errors.js';
import type { RgbaImage } from '../image/decode.js';
import type { OpenedPdf } from './pdf-source.js';

type PdfJs = typeof import('pdfjs-dist');
let pdfjs: Promise<PdfJs> | null = null;

function loadPdfJs(): Promise<PdfJs> {
  pdfjs ??= (async () => {
    const [lib, worker] = await Promise.all([import('pdfjs-dist'), import('pdfjs-dist/build/pdf.worker.min.mjs?url')]);
    lib.GlobalWorkerOptions.workerSrc = worker.default;
    return lib;
  })().catch((e: unknown) => {
    pdfjs = null;
    throw new ImageError(`pdf.js could not be loaded (${(e as Error).message})`, { cause: e });
  });
  return pdfjs;
}

type Canvas = HTMLCanvasElement | OffscreenCanvas;

/** An open PDF: page sizes in points, pages drawn to canvases at any scale. */
export interface BrowserPdf {
  pageCount: number;
  /** Page size in PDF points (1/72 inch). */
  pageSize(page: number): Promise<{ width: number; height: number }>;
  /** The page drawn at `scale` pixels per point (an `HTMLCanvasElement` where there is a DOM). */
  draw(page: number, scale: number): Promise<Canvas>;
  close(): Promise<void>;
}

export async function openBrowserPdf(bytes: Uint8Array, name = 'PDF'): Promise<BrowserPdf> {
  const lib = await loadPdfJs();
  let doc: Awaited<ReturnType<PdfJs['getDocument']>['promise']>;
  try {
    // pdf.js takes (detaches) the buffer it is given: hand it a copy.
    doc = await lib.getDocument({ data: bytes.slice(), isEvalSupported: false }).promise;
  } catch (e) {
    throw new ImageError(`${name}: not a readable PDF (${(e as Error).message})`, { cause: e });
  }
  const page = async (n: number) => {
    if (!Number.isInteger(n) || n < 1 || n > doc.numPages) throw new ImageError(`${name}: no page ${n} (the PDF has ${doc.numPages})`);
    return doc.getPage(n);
  };
  return {
    pageCount: doc.numPages,
    async pageSize(n) {
      const v = (await page(n)).getViewport({ scale: 1 });
      return { width: v.width, height: v.height };
    },
    async draw(n, scale) {
      const p = await page(n);
      try {
        const viewport = p.getViewport({ scale });
        const w = Math.max(1, Math.round(viewport.width));
        const h = Math.max(1, Math.round(viewport.height));
        const canvas: Canvas = typeof document !== 'undefined' ? Object.assign(document.createElement('canvas'), { width: w, height: h }) : new OffscreenCanvas(w, h);
        const ctx = canvas.getContext('2d') as CanvasRenderingContext2D | null;
        if (!ctx) throw new Error('no 2D canvas context');
        ctx.fillStyle = '#fff';
        ctx.fillRect(0, 0, w, h);
        await p.render({ canvas: canvas as HTMLCanvasElement, canvasContext: ctx, viewport }).promise;
        return canvas;
      } catch (e) {
        throw new ImageError(`${name}: page ${n} could not be rendered (${(e as Error).message})`, { cause: e });
      } finally {
        p.cleanup();
      }
    },
    close: () => doc.destroy(),
  };
}

/** `askDocument`'s opener in the browser: pages as RGBA at the asked longest edge. */
export async function openPdfForDocument(bytes: Uint8Array, name: string): Promise<OpenedPdf> {
  const pdf = await openBrowserPdf(bytes, name);
  return {
    pageCount: pdf.pageCount,
    async render(n, longestEdge): Promise<RgbaImage> {
      const size = await pdf.pageSize(n);
      const canvas = await pdf.draw(n, longestEdge / Math.max(size.width, size.height, 1));
      const ctx = canvas.getContext('2d') as CanvasRenderingContext2D;
      const d = ctx.getImageData(0, 0, canvas.width, canvas.height);
      return { width: d.width, height: d.height, data: d.data };
    },
    close: () => pdf.close(),
  };
}
