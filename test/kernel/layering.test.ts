import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/**
 * The layering rule of the source tree, checked on every import (issue #12): the kernel imports
 * neither the durable server nor the follower; those two never import each other; only the public
 * facade (src/facade, src/index.ts) imports both.
 */
const SRC = resolve(__dirname, '../../src');

type Layer = 'base' | 'kernel' | 'server' | 'follower' | 'facade';

/** Telemetry that knows neither kind of server (loading the optional `@opentelemetry/api`, backend
 * metrics): part of the base, usable by every layer. */
const BASE_TELEMETRY = new Set(['telemetry/otel.ts', 'telemetry/backend-metrics.ts']);

/** Which layer a file (relative to src) belongs to. */
function layerOf(file: string): Layer {
  if (BASE_TELEMETRY.has(file)) return 'base';
  const top = file.split('/')[0];
  if (top === 'index.ts' || top === 'facade' || top === 'testing') return 'facade'; // the package's entry points
  if (top === 'couch') return 'follower';
  if (['runtime', 'ops', 'cli', 'telemetry', 'timers'].includes(top)) return 'server';
  if (['kernel', 'decorators', 'registry'].includes(top)) return 'kernel';
  return 'base'; // errors.ts, returns.ts, text.ts, codec/, backend/
}

/** What each layer may import (besides itself). */
const MAY_IMPORT: Record<Layer, readonly Layer[]> = {
  base: [],
  kernel: ['base'],
  server: ['base', 'kernel'],
  follower: ['base', 'kernel'],
  facade: ['base', 'kernel', 'server', 'follower'],
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

function importsOf(path: string): string[] {
  const text = readFileSync(path, 'utf8');
  const found: string[] = [];
  for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) found.push(m[1]);
  return found;
}

function resolveImport(from: string, spec: string): string {
  const base = resolve(dirname(from), spec);
  for (const candidate of [`${base}.ts`, join(base, 'index.ts'), base])
    try {
      if (statSync(candidate).isFile()) return relative(SRC, candidate);
    } catch {
      // try the next form
    }
  throw new Error(`${relative(SRC, from)} imports ${spec}, which does not resolve`);
}

describe('layering of src/', () => {
  const files = sourceFiles(SRC);

  it('finds the source files and their layers', () => {
    expect(files.length).toBeGreaterThan(50);
    const layers = new Set(files.map((f) => layerOf(relative(SRC, f))));
    expect([...layers].sort()).toEqual(['base', 'facade', 'follower', 'kernel', 'server']);
  });

  it('no import crosses a layer it may not', () => {
    const violations: string[] = [];
    for (const path of files) {
      const file = relative(SRC, path);
      const own = layerOf(file);
      for (const spec of importsOf(path)) {
        const target = resolveImport(path, spec);
        const theirs = layerOf(target);
        if (theirs === own || MAY_IMPORT[own].includes(theirs)) continue;
        violations.push(`${file} (${own}) imports ${target} (${theirs})`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('the rule itself catches a follower file importing the durable server', () => {
    expect(MAY_IMPORT[layerOf('couch/x.ts')]).not.toContain(layerOf('runtime/x.ts'));
    expect(MAY_IMPORT[layerOf('kernel/x.ts')]).not.toContain(layerOf('couch/x.ts'));
    expect(MAY_IMPORT[layerOf('runtime/x.ts')]).not.toContain(layerOf('facade/runtime.ts'));
  });

  it('no source file is over 400 lines', () => {
    const long = files
      .map((path) => ({ file: relative(SRC, path), lines: readFileSync(path, 'utf8').split('\n').length }))
      .filter((f) => f.lines > 400)
      .map((f) => `${f.file}: ${f.lines}`);
    expect(long).toEqual([]);
  });
});
