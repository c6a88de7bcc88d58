/**
 * The small, typed WGSL preprocessor. Kernel variants differ only by boolean defines
 * (`#if F16` / `#else` / `#endif`, `!NAME` negates) and by `override` constants; no TypeScript
 * ever pastes numbers or shapes into shader text. `enable f16;` is added when `F16` is set.
 */

export type Defines = Readonly<Record<string, boolean>>;

export function preprocess(source: string, defines: Defines, name = 'shader'): string {
  const out: string[] = [];
  // Each frame: is this branch active, has any branch of this #if been taken, was the parent active.
  const stack: { active: boolean; taken: boolean; parent: boolean }[] = [];
  let active = true;
  const lines = source.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const t = line.trim();
    if (t.startsWith('#if ')) {
      const cond = evalCond(t.slice(4).trim(), defines, name, i);
      stack.push({ active, taken: cond, parent: active });
      active = active && cond;
    } else if (t.startsWith('#elif ')) {
      const top = stack[stack.length - 1];
      if (!top) throw new Error(`${name}.wgsl:${i + 1}: #elif without #if`);
      const cond = evalCond(t.slice(6).trim(), defines, name, i);
      active = top.parent && !top.taken && cond;
      top.taken ||= cond;
    } else if (t === '#else') {
      const top = stack[stack.length - 1];
      if (!top) throw new Error(`${name}.wgsl:${i + 1}: #else without #if`);
      active = top.parent && !top.taken;
      top.taken = true;
    } else if (t === '#endif') {
      const top = stack.pop();
      if (!top) throw new Error(`${name}.wgsl:${i + 1}: #endif without #if`);
      active = top.parent;
    } else if (t.startsWith('#')) {
      throw new Error(`${name}.wgsl:${i + 1}: unknown directive ${t}`);
    }
    // Directives and inactive lines become blank lines: the compiler's line numbers stay the
    // .wgsl file's.
    out.push(active && !t.startsWith('#') ? line : '');
  }
  if (stack.length) throw new Error(`${name}.wgsl: unterminated #if`);
  // `enable f16;` goes on the first line (before any declaration) without adding one, so the
  // compiler's line numbers are the .wgsl file's.
  if (defines.F16) out[0] = `enable f16; ${out[0]}`;
  return out.join('\n');
}

function evalCond(expr: string, defines: Defines, name: string, line: number): boolean {
  // `A && !B`, `A || B`: enough for dtype and feature knobs.
  if (expr.includes('||')) return expr.split('||').some((e) => evalCond(e.trim(), defines, name, line));
  if (expr.includes('&&')) return expr.split('&&').every((e) => evalCond(e.trim(), defines, name, line));
  const neg = expr.startsWith('!');
  const key = neg ? expr.slice(1).trim() : expr;
  if (!/^[A-Z_][A-Z0-9_]*$/.test(key)) throw new Error(`${name}.wgsl:${line + 1}: bad condition "${expr}"`);
  const v = defines[key] ?? false;
  return neg ? !v : v;
}
