import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';

const ROOT = path.resolve(__dirname, '../..');

/**
 * Transpiles the TypeScript files under `dirs` (relative to the project root) to plain CommonJS under
 * `outDir` (inside the project, so `node_modules` resolves), as ts-node --transpile-only would: child
 * processes then start in a fraction of a second instead of compiling as they load (as
 * bench/server.ts does for its workers). Returns a function mapping a source path to its output.
 */
export function transpileTree(dirs: string[], outDir: string): (src: string) => string {
  const { options } = ts.parseJsonConfigFileContent(
    ts.readConfigFile(path.join(ROOT, 'tsconfig.json'), ts.sys.readFile).config,
    ts.sys,
    ROOT,
  );
  const walk = (dir: string): string[] =>
    fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
      const p = path.join(dir, d.name);
      return d.isDirectory() ? walk(p) : p.endsWith('.ts') && !p.endsWith('.d.ts') ? [p] : [];
    });
  const out = (src: string) => path.join(outDir, path.relative(ROOT, src)).replace(/\.ts$/, '.js');
  for (const src of dirs.flatMap((d) => walk(path.join(ROOT, d)))) {
    const js = ts.transpileModule(fs.readFileSync(src, 'utf8'), {
      compilerOptions: { ...options, sourceMap: false, declaration: false, module: ts.ModuleKind.CommonJS },
      fileName: src,
    }).outputText;
    fs.mkdirSync(path.dirname(out(src)), { recursive: true });
    fs.writeFileSync(out(src), js);
  }
  return out;
}
