/**
 * The 12-page PDF of the embedded model's kind of pages, made in Node (sharp draws each page from
 * SVG, the e2e tests' writer wraps the JPEGs): a plain light or dark background, one box in one of
 * the six colours (the samples' RGB values), one bold digit on top; only page `redPage` is red.
 */
import sharp from 'sharp';
import { pdfFromJpegs } from '../e2e/pdf-writer.js';

const RGB: Record<string, string> = { red: 'rgb(210,18,30)', green: 'rgb(28,158,47)', blue: 'rgb(23,68,226)', yellow: 'rgb(240,210,20)', purple: 'rgb(145,50,185)', orange: 'rgb(250,140,10)' };
const OTHERS = ['green', 'blue', 'yellow', 'purple', 'orange'];
const SIZES: [number, number][] = [[176, 128], [128, 176], [160, 160], [208, 112]];

/** The box colour of each page, page 1 first. */
export function pageColors(count = 12, redPage = 5): string[] {
  return Array.from({ length: count }, (_, i) => (i + 1 === redPage ? 'red' : OTHERS[i % OTHERS.length]!));
}

async function page(color: string, i: number): Promise<{ jpeg: Uint8Array; width: number; height: number }> {
  const [width, height] = SIZES[i % 4]!;
  const dark = i % 3 === 2;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
    <rect width="100%" height="100%" fill="${dark ? 'rgb(30,32,36)' : 'rgb(240,240,236)'}"/>
    <rect x="${Math.round(width * 0.2)}" y="${Math.round(height * 0.25)}" width="${Math.round(width * 0.5)}" height="${Math.round(height * 0.5)}" fill="${RGB[color]}"/>
    <text x="50%" y="50%" dominant-baseline="central" text-anchor="middle" font-family="DejaVu Sans" font-weight="bold" font-size="${Math.round(Math.min(width, height) * 0.6)}" fill="${dark ? '#fff' : '#000'}">${(i * 7) % 10}</text>
  </svg>`;
  return { jpeg: new Uint8Array(await sharp(Buffer.from(svg)).jpeg({ quality: 95 }).toBuffer()), width, height };
}

export async function screensPdfNode(colors: string[]): Promise<Uint8Array> {
  return pdfFromJpegs(await Promise.all(colors.map((c, i) => page(c, i))));
}
