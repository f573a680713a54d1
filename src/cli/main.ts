#!/usr/bin/env node
import 'reflect-metadata';
import { CommanderError } from 'commander';
import { BadArgumentError, DgenError } from '../errors';
import { buildProgram } from './program';

/**
 * The `dgen-ts` executable. Exit status: 0 done, 1 a runtime error (backend unavailable, server not
 * found…), 2 a usage error (unknown command or option, malformed argument). An error is one line on
 * stderr: `dgen-ts: CODE: message`.
 */
async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  program.exitOverride();
  program.configureOutput({ outputError: () => undefined });
  for (const c of program.commands) {
    c.exitOverride();
    c.configureOutput({ outputError: () => undefined });
  }
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return 0; // --help, --version
      return fail('BAD_ARGUMENT', err.message.replace(/^error: /, ''), 2);
    }
    if (err instanceof BadArgumentError) return fail(err.code, err.message, 2);
    if (err instanceof DgenError) return fail(err.code, err.message, 1);
    return fail('INTERNAL', String((err as Error)?.message ?? err), 1);
  }
}

function fail(code: string, message: string, status: number): number {
  process.stderr.write(`dgen-ts: ${code}: ${message.replace(/\s*\n\s*/g, ' ')}\n`);
  return status;
}

void main(process.argv).then((status) => {
  process.exitCode = status;
});
