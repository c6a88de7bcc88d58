/**
 * PDF pages in Node -> RGBA images: `pdfjs-dist` (its legacy build, the one meant for Node)
 * draws each selected page at a chosen DPI over a white background (PDF pages have none) on an
 * `@napi-rs/canvas` canvas made by pdf.js's own canvas factory, and the pixels are read back
 * unpremultiplied. The factory's canvas, not one from our own `@napi-rs/canvas` import: pdf.js
 * draws with the Path2D/ImageData classes of the copy it loads, and mixing two copies of the
 * native module fails (a TypeError on fill, or a crash on images). Page
 * selections are 1-based lists and ranges (`1-3,5`, `2-`), also written after the file name
 * (`scan.pdf:1-3,5`, see `splitPageSpec`). Failures are `ImageError`s naming the file and page.
 */
import { ImageError, LimitError } from '../errors.js';
import { checkImageSize, type RgbaImage } from '../image/decode.js';

/** Default render resolution: a Letter page becomes 1275 x 1650 pixels (the model then downsizes). */
export const DEFAULT_DPI = 150;

export interface PdfPage {
  /** 1-based page number. */
  page: number;
  image: RgbaImage;
}

export interface RenderPdfOptions {
  /** Pages to render (1-based, any order, no duplicates); default all. */
  pages?: number[];
  /** Pixels per inch (a PDF point is 1/72 inch). Default `DEFAULT_DPI`. */
  dpi?: number;
  /** Names the document in errors. */
  name?: string;
}

/** A page selection, 1-based: `"1-3,5"` -> [1, 2, 3, 5]; `"4-"` runs to `pageCount`. */
export function parsePageSelection(spec: string, pageCount = Infinity): number[] {
  const out: number[] = [];
  for (const raw of spec.split(',')) {
    const part = raw.trim();
    const m = /^(\d+)(?:\s*(-)\s*(\d*))?$/.exec(part);
    if (!m) throw new LimitError(`page selection "${spec}": "${part}" is not a page number or range like 1-3`);
    const from = Number(m[1]);
    const to = m[2] ? (m[3] ? Number(m[3]) : pageCount) : from;
    if (from < 1 || to < from) throw new LimitError(`page selection "${spec}": "${part}" is not an increasing range of pages from 1`);
    if (!Number.isFinite(to)) throw new LimitError(`page selection "${spec}": an open range needs the page count`);
    for (let p = from; p <= to; p++) if (!out.includes(p)) out.push(p);
  }
  return out;
}

/**
 * Splits `path:pages` (e.g. `scan.pdf:1-3,5`) into the path and the selection; a colon not
 * followed by a page list (a Windows drive, a URL) is part of the path.
 */
export function splitPageSpec(arg: string): { path: string; pages?: string } {
  const m = /^(.*):(\s*\d+\s*(?:-\s*\d*\s*)?(?:,\s*\d+\s*(?:-\s*\d*\s*)?)*)$/.exec(arg);
  return m && m[1] ? { path: m[1], pages: m[2]!.trim() } : { path: arg };
}

type PdfJs = typeof import('pdfjs-dist');

let libs: Promise<{ pdfjs: PdfJs }> | null = null;

function loadLibs(): Promise<{ pdfjs: PdfJs }> {
  libs ??= (async () => {
    try {
      return { pdfjs: (await import('pdfjs-dist/legacy/build/pdf.mjs')) as PdfJs };
    } catch (e) {
      libs = null;
      throw new ImageError(`rendering PDFs in Node needs "pdfjs-dist" and "@napi-rs/canvas": npm install pdfjs-dist @napi-rs/canvas (${(e as Error).message})`, { cause: e });
    }
  })();
  return libs;
}

/** pdf.js's canvas factory (Node: `@napi-rs/canvas`), as far as it is used here. */
interface CanvasFactory {
  create(width: number, height: number): { canvas: HTMLCanvasElement; context: CanvasRenderingContext2D };
  destroy(entry: { canvas: HTMLCanvasElement; context: CanvasRenderingContext2D }): void;
}

/** The number of pages of a PDF. */
export async function pdfPageCount(bytes: Uint8Array, name = 'PDF'): Promise<number> {
  const { pdfjs } = await loadLibs();
  const doc = await openDoc(pdfjs, bytes, name);
  try {
    return doc.numPages;
  } finally {
    await doc.destroy();
  }
}

async function openDoc(pdfjs: PdfJs, bytes: Uint8Array, name: string) {
  try {
    // pdf.js takes ownership of (detaches) the buffer it is given, and refuses Buffers: a plain copy.
    return await pdfjs.getDocument({ data: new Uint8Array(bytes), isEvalSupported: false, verbosity: 0 }).promise;
  } catch (e) {
    throw new ImageError(`${name}: not a readable PDF (${(e as Error).message})`, { cause: e });
  }
}

/** Renders the selected pages of a PDF to RGBA images, in the order of the selection. */
export async function renderPdfPages(bytes: Uint8Array, opts: RenderPdfOptions = {}): Promise<PdfPage[]> {
  const name = opts.name ?? 'PDF';
  const dpi = opts.dpi ?? DEFAULT_DPI;
  if (!(dpi > 0 && dpi <= 1200)) throw new LimitError(`dpi must be in (0, 1200] (got ${dpi})`);
  const { pdfjs } = await loadLibs();
  const doc = await openDoc(pdfjs, bytes, name);
  try {
    const pages = opts.pages ?? Array.from({ length: doc.numPages }, (_, i) => i + 1);
    const bad = pages.filter((p) => !Number.isInteger(p) || p < 1 || p > doc.numPages);
    if (bad.length) throw new ImageError(`${name}: no page ${bad.join(', ')} (the PDF has ${doc.numPages} page${doc.numPages === 1 ? '' : 's'})`);
    const out: PdfPage[] = [];
    for (const n of pages) {
      try {
        const page = await doc.getPage(n);
        const viewport = page.getViewport({ scale: dpi / 72 });
        const width = Math.max(1, Math.round(viewport.width));
        const height = Math.max(1, Math.round(viewport.height));
        checkImageSize(width, height, `${name} page ${n} at ${dpi} dpi`);
        const factory = (doc as unknown as { canvasFactory: CanvasFactory }).canvasFactory;
        const { canvas, context: ctx } = factory.create(width, height);
        ctx.fillStyle = '#fff';
        ctx.fillRect(0, 0, width, height);
        await page.render({ canvas, canvasContext: ctx, viewport }).promise;
        page.cleanup();
        const data = ctx.getImageData(0, 0, width, height).data;
        factory.destroy({ canvas, context: ctx });
        out.push({ page: n, image: { width, height, data: new Uint8ClampedArray(data.buffer, data.byteOffset, data.byteLength) } });
      } catch (e) {
        if (e instanceof ImageError || e instanceof LimitError) throw e;
        throw new ImageError(`${name}: page ${n} could not be rendered (${(e as Error).message})`, { cause: e });
      }
    }
    return out;
  } finally {
    await doc.destroy();
  }
}
