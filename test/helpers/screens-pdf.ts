/**
 * A multi-page PDF of the embedded model's kind of content, drawn in the browser: each page a
 * plain light or dark background, one filled box in one of the six colours (the samples' own
 * RGB values) and one bold digit on top, within the model's 24-256 px sizes. Pages are JPEGs
 * wrapped by the e2e tests' PDF writer.
 */
import { pdfFromJpegs, type JpegPage } from '../e2e/pdf-writer.js';

/** RGB of each box colour, measured on `shared/models/pixtral-tiny-screens/samples`. */
export const BOX_RGB: Record<string, string> = {
  red: 'rgb(210,18,30)',
  green: 'rgb(28,158,47)',
  blue: 'rgb(23,68,226)',
  yellow: 'rgb(240,210,20)',
  purple: 'rgb(145,50,185)',
  orange: 'rgb(250,140,10)',
};

export interface ScreenPage {
  color: string;
  digit: number;
  width: number;
  height: number;
  dark: boolean;
}

/** Twelve pages: only `redPage` (1-based) has a red box, the rest cycle through the other colours. */
export function twelvePages(redPage = 5): ScreenPage[] {
  const others = ['green', 'blue', 'yellow', 'purple', 'orange'];
  const sizes: [number, number][] = [[176, 128], [128, 176], [160, 160], [208, 112]];
  return Array.from({ length: 12 }, (_, i) => ({
    color: i + 1 === redPage ? 'red' : others[i % others.length]!,
    digit: (i * 7) % 10,
    width: sizes[i % 4]![0],
    height: sizes[i % 4]![1],
    dark: i % 3 === 2,
  }));
}

async function jpeg(p: ScreenPage): Promise<JpegPage> {
  const c = new OffscreenCanvas(p.width, p.height);
  const ctx = c.getContext('2d')!;
  ctx.fillStyle = p.dark ? 'rgb(30,32,36)' : 'rgb(240,240,236)';
  ctx.fillRect(0, 0, p.width, p.height);
  const bw = Math.round(p.width * 0.5);
  const bh = Math.round(p.height * 0.5);
  ctx.fillStyle = BOX_RGB[p.color]!;
  ctx.fillRect(Math.round(p.width * 0.2), Math.round(p.height * 0.25), bw, bh);
  ctx.fillStyle = p.dark ? '#fff' : '#000';
  ctx.font = `bold ${Math.round(Math.min(p.width, p.height) * 0.6)}px sans-serif`;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  ctx.fillText(String(p.digit), p.width / 2, p.height / 2);
  const blob = await c.convertToBlob({ type: 'image/jpeg', quality: 0.95 });
  return { jpeg: new Uint8Array(await blob.arrayBuffer()), width: p.width, height: p.height };
}

export async function screensPdf(pages: ScreenPage[]): Promise<Uint8Array> {
  return pdfFromJpegs(await Promise.all(pages.map(jpeg)));
}
