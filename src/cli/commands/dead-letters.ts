import { BadArgumentError } from '../../errors';
import { purgeDeadLetters, readDeadLetters, requeueDeadLetters } from '../../ops/dead-letters';
import { toFaithfulJson } from '../../ops/faithful-json';
import { describeServer } from '../../ops/inspect';
import { ServerKeys } from '../../runtime/server-keys';
import { out, parseTenant, parseTuid, withBackend } from '../io';
import { Table } from '../table';

export interface DeadLetterOptions {
  requeue?: string[] | boolean;
  purge?: string[] | boolean;
  all?: boolean;
  json?: boolean;
}

/** Which letters a writing option names: ids, or every one with --all (undefined = all). */
function target(option: string[] | boolean, all: boolean | undefined, name: string): string[] | undefined {
  const ids = Array.isArray(option) ? option : [];
  if (ids.length > 0 && all)
    throw new BadArgumentError('BAD_ARGUMENT', `give --${name} either ids or --all, not both`);
  if (ids.length === 0 && !all)
    throw new BadArgumentError(
      'BAD_ARGUMENT',
      `--${name} needs the ids of the letters (see the listing), or --all`,
    );
  return all ? undefined : ids;
}

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/**
 * `dead-letters SPEC TENANT TUID`: lists a server's dead letters; with `--requeue ID…|--all` puts them
 * back at the end of its queue, with `--purge ID…|--all` deletes them (the only writing commands), and
 * says what it changed.
 */
export async function deadLettersCommand(
  spec: string,
  tenantText: string,
  tuidText: string,
  opts: DeadLetterOptions,
) {
  const path = parseTenant(tenantText);
  const tuid = parseTuid(tuidText);
  if (opts.requeue && opts.purge)
    throw new BadArgumentError('BAD_ARGUMENT', 'give --requeue or --purge, not both');
  const write = opts.requeue ? 'requeue' : opts.purge ? 'purge' : undefined;
  if (!write && opts.all) throw new BadArgumentError('BAD_ARGUMENT', '--all goes with --requeue or --purge');
  const ids = write ? target((opts.requeue ?? opts.purge)!, opts.all, write) : undefined;
  await withBackend(spec, async (backend) => {
    const tenant = await backend.openTenant(path);
    await describeServer(tenant, tuid); // NOT_FOUND for a server that does not exist
    const where = `${JSON.stringify(tuid)} in ${path.join('/')}`;
    if (write) {
      const n =
        write === 'requeue'
          ? await requeueDeadLetters(tenant, tuid, ids)
          : await purgeDeadLetters(tenant, tuid, ids);
      const what = `${n} dead letter${n === 1 ? '' : 's'}`;
      const missing = ids ? ids.length - n : 0;
      if (opts.json) await out(JSON.stringify({ [write === 'requeue' ? 'requeued' : 'purged']: n, missing }));
      else
        await out(
          (write === 'requeue'
            ? `requeued ${what} of ${where} (now at the end of its queue)`
            : `purged ${what} of ${where}`) + (missing > 0 ? `; ${missing} id(s) matched no letter` : ''),
        );
      return;
    }
    const letters = await tenant.read((tx) => readDeadLetters(tx, new ServerKeys(tuid)));
    if (opts.json) {
      await out(JSON.stringify(letters.map((l) => ({ ...l, msg: toFaithfulJson(l.msg) }))));
      return;
    }
    if (letters.length === 0) return out(`no dead letters for ${where}`);
    const table = new Table(['ID', 'ATTEMPTS', 'ERROR', 'MESSAGE']);
    await out(
      table.render(
        letters.map((l) => [
          l.id,
          l.attempts,
          clip(l.error, 60),
          clip(JSON.stringify(toFaithfulJson(l.msg)), 60),
        ]),
      ),
    );
  });
}
