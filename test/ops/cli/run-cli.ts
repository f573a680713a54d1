import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..', '..');
export const CLI_ARGS = ['-r', 'ts-node/register/transpile-only', join(ROOT, 'src', 'cli', 'main.ts')];

export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs the real `dgen-ts` as a child process (node + ts-node, as `npx dgen-ts` runs dist/cli/main.js). */
export function runCli(args: string[], timeoutMs = 240_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...CLI_ARGS, ...args],
      { cwd: ROOT, timeout: timeoutMs },
      (err, stdout, stderr) => {
        // a child killed by the timeout has no exit code: -1, and its signal in stderr
        const status = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        if (err && typeof err.code !== 'number') stderr += `\n[runCli: ${err.message}]`;
        resolve({ status, stdout, stderr });
      },
    );
  });
}

export function spawnCli(args: string[]): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [...CLI_ARGS, ...args], { cwd: ROOT });
}
