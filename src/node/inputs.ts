/**
 * What a Node caller may pass as an image, resolved to RGBA pages: a file path (`scan.pdf:1-3,5`
 * selects PDF pages), a `file:` URL, bytes (`Buffer`, `Uint8Array`, `ArrayBuffer`), a `Blob`, or
 * already decoded `RgbaImage` pixels. PDFs (recognised by their bytes, not their name) give one
 * image per selected page; everything else gives one image.
 */
import { isRgbaImage, type RgbaImage } from '../image/decode.js';
import { decodeImageBytes, describeSource, isPdf, sourceBytes, type NodeImageSource } from './images.js';
import { parsePageSelection, pdfPageCount, renderPdfPages, splitPageSpec } from './pdf.js';

export type NodeImageInput = NodeImageSource | RgbaImage;

export interface ResolveImageOptions {
  /** PDF pages (1-based list, or a selection like "1-3,5"); overrides a `path:pages` suffix. Default all. */
  pages?: number[] | string;
  /** PDF render resolution (default `DEFAULT_DPI`). */
  dpi?: number;
}

export interface ResolvedImage {
  /** The input as given (path without the page suffix), for reports. */
  source: string;
  /** 1-based PDF page, or null for an image. */
  page: number | null;
  image: RgbaImage;
}

/** Decodes one input: one image, or one per selected page of a PDF. */
export async function resolveImage(input: NodeImageInput, opts: ResolveImageOptions = {}): Promise<ResolvedImage[]> {
  if (isRgbaImage(input)) return [{ source: `RGBA ${input.width}x${input.height}`, page: null, image: input }];
  let src: NodeImageSource = input;
  let spec: string | number[] | undefined = opts.pages;
  if (typeof input === 'string') {
    const split = splitPageSpec(input);
    src = split.path;
    spec ??= split.pages;
  }
  const name = describeSource(src);
  const bytes = await sourceBytes(src);
  if (!isPdf(bytes)) return [{ source: name, page: null, image: await decodeImageBytes(bytes, name) }];
  const pages = typeof spec === 'string' ? parsePageSelection(spec, await pdfPageCount(bytes, name)) : spec;
  const rendered = await renderPdfPages(bytes, { pages, dpi: opts.dpi, name });
  return rendered.map((p) => ({ source: name, page: p.page, image: p.image }));
}
