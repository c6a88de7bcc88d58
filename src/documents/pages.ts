/**
 * A document's pages, rendered once and kept for the next question: a cache keyed by the
 * document object (a `Blob`/`File`, an `ArrayBuffer`, a `Uint8Array`, a list of images) and, for
 * bytes that arrive as a new object, by the SHA-256 of the bytes. What is kept is each page's
 * RGBA at the model's longest edge (Pixtral-12B: at most 4 MiB a page); the engine's own image
 * cache keeps the preprocessed pixels of the pages it saw last. The last `DOCUMENTS_KEPT`
 * documents are kept.
 */
import { ImageError, LimitError } from '../errors.js';
import { decodeImage, type ImageInput, type RgbaImage } from '../image/decode.js';
import { sha256Hex } from '../weights/hash.js';
import type { OpenedPdf, PdfOpener } from './pdf-source.js';
import type { DocumentInput } from './types.js';

const DOCUMENTS_KEPT = 4;

interface Entry {
  pageCount: number;
  /** Rendered pages by `page@edge`. */
  rendered: Map<string, RgbaImage>;
  bytes: Uint8Array | null;
  images: readonly ImageInput[] | null;
}

const byObject = new WeakMap<object, Entry>();
const byHash = new Map<string, Entry>();

const hasSize = (x: ImageInput): x is ImageInput & { width: number; height: number } =>
  typeof (x as { width?: unknown }).width === 'number' && typeof (x as { height?: unknown }).height === 'number' && (x as { width: number }).width > 0;

const isBlob = (x: unknown): x is Blob => typeof Blob !== 'undefined' && x instanceof Blob;

/** A 1-based page selection: `"1-3,5"`, `"4-"` (to the end); checked against the page count. */
export function selectPages(spec: string | undefined, pageCount: number, name: string): number[] {
  if (spec === undefined) return Array.from({ length: pageCount }, (_, i) => i + 1);
  const out: number[] = [];
  for (const raw of spec.split(',')) {
    const part = raw.trim();
    const m = /^(\d+)(?:\s*(-)\s*(\d*))?$/.exec(part);
    if (!m) throw new LimitError(`pages "${spec}": "${part}" is not a page number or range like 1-20`);
    const from = Number(m[1]);
    const to = m[2] ? (m[3] ? Number(m[3]) : pageCount) : from;
    if (from < 1 || to < from) throw new LimitError(`pages "${spec}": "${part}" is not an increasing range of pages from 1`);
    if (to > pageCount) throw new LimitError(`pages "${spec}": ${name} has ${pageCount} page${pageCount === 1 ? '' : 's'}`);
    for (let p = from; p <= to; p++) if (!out.includes(p)) out.push(p);
  }
  return out;
}

async function bytesOf(doc: Blob | ArrayBuffer | Uint8Array): Promise<Uint8Array> {
  if (isBlob(doc)) return new Uint8Array(await doc.arrayBuffer());
  if (doc instanceof ArrayBuffer) return new Uint8Array(doc);
  return doc;
}

/** The pages of one document for one question: lookups hit the cache, misses render and fill it. */
export class DocumentPages {
  reused = 0;
  rendered = 0;
  renderMs = 0;
  private pdf: OpenedPdf | null = null;

  private constructor(
    private readonly entry: Entry,
    private readonly open: PdfOpener,
    private readonly name: string,
  ) {}

  static async of(doc: DocumentInput, open: PdfOpener, name: string): Promise<DocumentPages> {
    if (Array.isArray(doc)) {
      if (doc.length === 0) throw new ImageError(`${name}: the list of page images is empty`);
      let e = byObject.get(doc);
      if (!e) byObject.set(doc, (e = { pageCount: doc.length, rendered: new Map(), bytes: null, images: doc }));
      return new DocumentPages(e, open, name);
    }
    if (!isBlob(doc) && !(doc instanceof ArrayBuffer) && !(doc instanceof Uint8Array)) {
      throw new ImageError(`${name}: expected a PDF (File, Blob, ArrayBuffer, Uint8Array) or a list of page images`);
    }
    let e = byObject.get(doc as object);
    if (!e) {
      const bytes = await bytesOf(doc as Blob | ArrayBuffer | Uint8Array);
      const key = await sha256Hex(bytes);
      e = byHash.get(key);
      if (e) byHash.delete(key);
      else {
        const pdf = await open(bytes, name);
        e = { pageCount: pdf.pageCount, rendered: new Map(), bytes, images: null };
        await pdf.close();
      }
      byHash.set(key, e); // most recent last
      while (byHash.size > DOCUMENTS_KEPT) byHash.delete(byHash.keys().next().value!);
      byObject.set(doc as object, e);
    }
    return new DocumentPages(e, open, name);
  }

  get pageCount(): number {
    return this.entry.pageCount;
  }

  /** Page `n` as an image the engine takes, at most `longestEdge` pixels on its longest side. */
  async page(n: number, longestEdge: number, countReuse = true): Promise<ImageInput & { width: number; height: number }> {
    const given = this.entry.images?.[n - 1];
    // Pages given as images: those that know their size are used as they are; encoded ones
    // (Blob, File) are decoded once, here, to learn it, and the decoded pixels are kept.
    if (given && hasSize(given)) return given;
    const key = given ? `${n}@image` : `${n}@${longestEdge}`;
    const hit = this.entry.rendered.get(key);
    if (hit) {
      if (countReuse) this.reused++;
      return hit;
    }
    const t0 = performance.now();
    let img: RgbaImage;
    if (given) img = await decodeImage(given);
    else {
      this.pdf ??= await this.open(this.entry.bytes!, this.name);
      img = await this.pdf.render(n, longestEdge);
    }
    this.entry.rendered.set(key, img);
    this.rendered++;
    this.renderMs += performance.now() - t0;
    return img;
  }

  async close(): Promise<void> {
    const pdf = this.pdf;
    this.pdf = null;
    await pdf?.close();
  }
}
