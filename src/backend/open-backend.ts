import { BadArgumentError } from '../errors';
import { MemoryBackend } from './memory/memory-backend';
import type { Backend } from './types';

const ACCEPTED = "'memory:', 'sqlite:PATH' (e.g. 'sqlite:./data/dgen.sqlite'), 'fdb:' or 'fdb:CLUSTER_FILE'";

/** Opens a backend from a spec string: `memory:`, `sqlite:PATH`, `fdb:` or `fdb:/path/fdb.cluster`. */
export async function openBackend(spec: string): Promise<Backend> {
  if (typeof spec !== 'string')
    throw new BadArgumentError('BAD_BACKEND_SPEC', `openBackend takes a string; accepted forms: ${ACCEPTED}`);
  if (spec === 'memory:') return new MemoryBackend();
  throw new BadArgumentError('BAD_BACKEND_SPEC', `unknown backend spec ${JSON.stringify(spec)}; accepted forms: ${ACCEPTED}`);
}
