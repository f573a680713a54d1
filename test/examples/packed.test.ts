/**
 * Installable like any package (issue #11): `npm pack` builds dist/ (the `prepare` script), and the
 * README's examples — the CommonJS one and the ES module one — compile and run as written against the
 * packed copy, in a scratch project with the README's tsconfig.
 *
 * The scratch project gets the tarball's files as npm would unpack them, and links to the repository's
 * installed copies of exactly the dependencies the packed package.json declares (a dependency missing
 * from package.json fails here), so no native module is built twice.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

/** The README's fenced blocks of one language, in order. */
function readmeBlocks(lang: string): string[] {
  const text = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const re = new RegExp('^```' + lang + '\\n([\\s\\S]*?)^```$', 'gm');
  return [...text.matchAll(re)].map((m) => m[1]);
}

const run = (cmd: string, args: string[], cwd: string): string =>
  execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });

let dir: string;
let project: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dgen-packed-'));
  project = path.join(dir, 'project');
  const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', dir], ROOT)) as Array<{
    filename: string;
    files: Array<{ path: string }>;
  }>;
  const files = packed[0].files.map((f) => f.path);
  expect(files).toContain('dist/index.js');
  expect(files).toContain('dist/index.d.ts');
  const installed = path.join(project, 'node_modules', 'dgen-ts');
  fs.mkdirSync(installed, { recursive: true });
  run('tar', ['-xzf', path.join(dir, packed[0].filename), '-C', installed, '--strip-components=1'], dir);
  const manifest = JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
  };
  for (const dep of Object.keys(manifest.dependencies)) {
    const link = path.join(project, 'node_modules', dep);
    fs.mkdirSync(path.dirname(link), { recursive: true });
    fs.symlinkSync(path.join(ROOT, 'node_modules', dep), link, 'dir');
  }
}, 180_000);

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('the README examples compile with the README tsconfig and run from the packed package (CommonJS and ESM)', () => {
  const [tsconfig] = readmeBlocks('json');
  const base = JSON.parse(tsconfig) as { compilerOptions: Record<string, unknown> };
  expect(base.compilerOptions).not.toHaveProperty('emitDecoratorMetadata');
  const tsBlocks = readmeBlocks('ts');
  const [mts] = readmeBlocks('mts');
  expect(tsBlocks.length).toBeGreaterThanOrEqual(3);
  tsBlocks.forEach((code, i) =>
    fs.writeFileSync(path.join(project, i === 0 ? 'counter.ts' : `readme-${i}.ts`), code),
  );
  fs.writeFileSync(path.join(project, 'counter.mts'), mts);
  const write = (file: string, options: Record<string, unknown>, include: string[]) =>
    fs.writeFileSync(
      path.join(project, file),
      JSON.stringify({
        compilerOptions: { ...base.compilerOptions, ...options, skipLibCheck: false },
        include,
      }),
    );
  write('tsconfig.json', {}, ['*.ts']);
  write('tsconfig.esm.json', { module: 'nodenext', moduleResolution: 'nodenext' }, ['*.mts']);
  for (const config of ['tsconfig.json', 'tsconfig.esm.json']) {
    try {
      run(process.execPath, [TSC, '-p', config], project);
    } catch (err) {
      throw new Error(`README examples do not compile (${config}):\n${(err as { stdout?: string }).stdout}`, {
        cause: err,
      });
    }
  }
  // The counter is durable: each run adds 2 to the state the last one left.
  expect(run(process.execPath, ['counter.js'], project).trim()).toBe('2');
  expect(run(process.execPath, ['counter.js'], project).trim()).toBe('4');
  expect(run(process.execPath, ['counter.mjs'], project).trim()).toBe('6');
}, 180_000);

test('the packed package has the dgen-ts command (bin, shebang) and it runs from the installed copy', () => {
  const manifest = JSON.parse(
    fs.readFileSync(path.join(project, 'node_modules', 'dgen-ts', 'package.json'), 'utf8'),
  ) as { bin: Record<string, string> };
  expect(manifest.bin).toEqual({ 'dgen-ts': 'dist/cli/main.js' });
  const main = path.join(project, 'node_modules', 'dgen-ts', manifest.bin['dgen-ts']);
  expect(fs.readFileSync(main, 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
  expect(run(process.execPath, [main, '--help'], project)).toMatch(
    /servers[\s\S]*dead-letters[\s\S]*dashboard/,
  );
}, 180_000);
