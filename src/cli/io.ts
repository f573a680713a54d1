import { existsSync } from 'node:fs';
import { openBackend } from '../backend/open-backend';
import type { Backend } from '../backend/types';
import { checkTenantPath } from '../backend/common/tenant-path';
import { BackendError, BadArgumentError } from '../errors';
import type { Tuid } from '../returns';

/** Writes to stdout, waiting when its buffer is full (a 100k-line listing stays bounded in memory). */
export function out(text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (process.stdout.write(text + '\n')) return resolve();
    // one listener of each at a time (a listing waits for 'drain' thousands of times)
    const drained = () => {
      process.stdout.off('error', failed);
      resolve();
    };
    const failed = (err: Error) => {
      process.stdout.off('drain', drained);
      reject(err);
    };
    process.stdout.once('drain', drained);
    process.stdout.once('error', failed);
  });
}

/**
 * Opens the backend a command names. A `sqlite:` file must exist: the inspector never creates an
 * empty database by mistyping a path.
 */
export async function openSpec(spec: string): Promise<Backend> {
  if (spec.startsWith('sqlite:') && !existsSync(spec.slice('sqlite:'.length)))
    throw new BackendError('BACKEND_UNAVAILABLE', `no SQLite file at ${spec.slice('sqlite:'.length)}`);
  return openBackend(spec);
}

/** Runs `fn` on the backend of `spec`, closing it afterwards. */
export async function withBackend<T>(spec: string, fn: (backend: Backend) => Promise<T>): Promise<T> {
  const backend = await openSpec(spec);
  try {
    return await fn(backend);
  } finally {
    await backend.close();
  }
}

/** `a/b` → ['a', 'b']. */
export function parseTenant(text: string): readonly string[] {
  return checkTenantPath(text.split('/'));
}

/**
 * A tuid as printed by `servers`: a JSON array of strings and numbers (`'["counter","c1"]'`), or
 * `a/b/c` when every part is a string.
 */
export function parseTuid(text: string): Tuid {
  let tuid: unknown;
  if (text.startsWith('[')) {
    try {
      tuid = JSON.parse(text);
    } catch {
      tuid = undefined;
    }
  } else tuid = text.split('/');
  if (
    !Array.isArray(tuid) ||
    tuid.length === 0 ||
    !tuid.every(
      (p) => (typeof p === 'string' && p.length > 0) || (typeof p === 'number' && Number.isFinite(p)),
    )
  )
    throw new BadArgumentError(
      'BAD_ARGUMENT',
      `a TUID is a JSON array of strings and numbers, e.g. '["counter","c1"]', or a/b for strings only (got ${JSON.stringify(text)})`,
    );
  return tuid as Tuid;
}
