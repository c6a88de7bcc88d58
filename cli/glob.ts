/**
 * File globs for `ask --each` (Node 20 has no `fs.glob`): braces `{png,jpg}` (nested too),
 * `*` and `?` within a path segment, `[abc]` classes, and `**` for any depth of folders.
 * Matches are files only, sorted, given as the pattern spells them (relative stays relative).
 * Hidden entries are matched only by a segment that starts with a dot.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** `a{b,c{d,e}}f` -> [abf, acdf, acef]; unbalanced braces are literal. */
export function expandBraces(pattern: string): string[] {
  let depth = 0;
  let open = -1;
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === '\\') i++;
    else if (ch === '{' && depth++ === 0) open = i;
    else if (ch === '}' && depth > 0 && --depth === 0) {
      const body = pattern.slice(open + 1, i);
      const alts: string[] = [];
      let d = 0;
      let start = 0;
      for (let j = 0; j < body.length; j++) {
        if (body[j] === '{') d++;
        else if (body[j] === '}') d--;
        else if (body[j] === ',' && d === 0) {
          alts.push(body.slice(start, j));
          start = j + 1;
        }
      }
      alts.push(body.slice(start));
      if (alts.length < 2) continue; // `{x}` is literal
      const head = pattern.slice(0, open);
      const tails = expandBraces(pattern.slice(i + 1));
      return alts.flatMap((a) => expandBraces(head + a).flatMap((h) => tails.map((t) => h + t)));
    }
  }
  return [pattern];
}

const MAGIC = /[*?[]/;

function segmentRegex(seg: string): RegExp {
  let re = '';
  for (let i = 0; i < seg.length; i++) {
    const ch = seg[i]!;
    if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else if (ch === '[') {
      const end = seg.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        const body = seg.slice(i + 1, end).replace(/\\/g, '\\\\');
        re += `[${body.startsWith('!') ? `^${body.slice(1)}` : body}]`;
        i = end;
      }
    } else if (ch === '\\' && i + 1 < seg.length) re += `\\${seg[++i]}`;
    else re += ch.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

async function entries(dir: string): Promise<{ name: string; dir: boolean; file: boolean }[]> {
  try {
    return (await readdir(dir || '.', { withFileTypes: true })).map((e) => ({ name: e.name, dir: e.isDirectory(), file: e.isFile() }));
  } catch {
    return [];
  }
}

async function walk(base: string, segs: string[], out: Set<string>): Promise<void> {
  if (!segs.length) return;
  const [seg, ...rest] = segs as [string, ...string[]];
  const last = rest.length === 0;
  if (seg === '**') {
    await walk(base, rest, out); // zero folders
    for (const e of await entries(base)) if (e.dir && !e.name.startsWith('.')) await walk(join(base, e.name), segs, out);
    return;
  }
  if (!MAGIC.test(seg)) {
    const path = base ? join(base, seg) : seg;
    if (last) {
      const parent = await entries(base);
      if (parent.some((e) => e.name === seg && e.file)) out.add(path);
    } else await walk(path, rest, out);
    return;
  }
  const re = segmentRegex(seg);
  for (const e of await entries(base)) {
    if (e.name.startsWith('.') && !seg.startsWith('.')) continue;
    if (!re.test(e.name)) continue;
    const path = base ? join(base, e.name) : e.name;
    if (last) {
      if (e.file) out.add(path);
    } else if (e.dir) await walk(path, rest, out);
  }
}

/** Files matching `pattern`, sorted. */
export async function glob(pattern: string): Promise<string[]> {
  const out = new Set<string>();
  for (const p of expandBraces(pattern)) {
    const absolute = p.startsWith('/');
    const segs = p.split('/').filter((s, i) => s !== '' || i === 0).filter((s) => s !== '');
    await walk(absolute ? '/' : '', segs, out);
  }
  return [...out].sort();
}
