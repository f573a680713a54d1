import { listServers, type ServerSummary } from '../../ops/inspect';
import { out, parseTenant, withBackend } from '../io';
import { ago, Table, type Cell } from '../table';

export interface ServersOptions {
  tenant?: string;
  json?: boolean;
}

const HEADER = [
  'TENANT',
  'TUID',
  'CLASS',
  'QUEUE',
  'OLDEST',
  'LOCK',
  'LEASE',
  'DEAD',
  'KEYS',
  'BYTES',
  'VER',
];

/** The lock holder, shortened: the process id's first 8 characters and the holder's number. */
const holder = (owner: string): string => {
  const [proc, n] = owner.split('/');
  return n === undefined ? owner : `${proc.slice(0, 8)}/${n}`;
};

export function serverRow(s: ServerSummary, now = Date.now()): Cell[] {
  return [
    s.tenant.join('/'),
    JSON.stringify(s.tuid),
    s.className,
    s.queueLength,
    ago(s.oldestAgeMs),
    s.lock ? holder(s.lock.owner) : '-',
    s.lock ? (s.lock.leaseUntil > now ? `${ago(s.lock.leaseUntil - now)} left` : 'expired') : '-',
    s.deadLetters,
    s.stateKeys,
    s.stateBytes,
    s.version,
  ];
}

/** `servers SPEC [--tenant a/b] [--json]`: every indexed server, streamed a page at a time. */
export async function serversCommand(spec: string, opts: ServersOptions): Promise<void> {
  const tenant = opts.tenant === undefined ? undefined : parseTenant(opts.tenant);
  await withBackend(spec, async (backend) => {
    let count = 0;
    const table = new Table(HEADER);
    if (opts.json) await out('[');
    for await (const page of listServers(backend, tenant)) {
      if (opts.json) {
        // a comma leads every element but the first: valid JSON without knowing which comes last
        await out(page.map((s, i) => (count + i > 0 ? ',' : '') + JSON.stringify(s)).join('\n'));
      } else {
        const lines = table.rows(page.map((s) => serverRow(s)));
        if (count === 0) await out(table.head());
        await out(lines.join('\n'));
      }
      count += page.length;
    }
    if (opts.json) await out(']');
    else if (count === 0) await out(`no servers${tenant ? ` in tenant ${tenant.join('/')}` : ''}`);
  });
}
