import { Sampler, type Sample } from '../../ops/sampler';
import { out, parseTenant, withBackend } from '../io';
import { ago, Table } from '../table';

export interface TopOptions {
  tenant?: string;
  interval: number;
  iterations?: number;
  limit: number;
  json?: boolean;
}

/** A server with its enqueue/handle rates since the previous refresh (null on the first). */
export type TopRow = Sample;

const busiest = (a: TopRow, b: TopRow) =>
  b.queueLength - a.queueLength || (b.inRate ?? 0) - (a.inRate ?? 0) || (b.outRate ?? 0) - (a.outRate ?? 0);

/**
 * `top SPEC`: every `interval` ms, the busiest queues (depth, then enqueue rate), until Ctrl-C or
 * `--iterations`. The dashboard's Sampler reads the servers and turns the queues' push/pop counters
 * into rates between two refreshes; only the busiest rows are held.
 */
export async function topCommand(spec: string, opts: TopOptions): Promise<void> {
  const tenant = opts.tenant === undefined ? undefined : parseTenant(opts.tenant);
  let stopped = false;
  let wake = () => {};
  const onSignal = () => {
    stopped = true;
    wake();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await withBackend(spec, async (backend) => {
      const sampler = new Sampler(backend, tenant);
      for (let i = 0; !stopped && (opts.iterations === undefined || i < opts.iterations); i++) {
        if (i > 0) await new Promise<void>((r) => ((wake = r), setTimeout(r, opts.interval)));
        if (stopped) break;
        let rows: TopRow[] = [];
        let servers = 0;
        let depth = 0;
        await sampler.sample((s) => {
          rows.push(s);
          servers++;
          depth += s.queueLength;
          if (rows.length > opts.limit * 4) rows = rows.sort(busiest).slice(0, opts.limit);
        });
        rows = rows.sort(busiest).slice(0, opts.limit);
        await show(spec, rows, servers, depth, opts);
      }
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

const rate = (r: number | null) => (r === null ? '-' : r.toFixed(1));

async function show(spec: string, rows: TopRow[], servers: number, depth: number, opts: TopOptions) {
  if (opts.json) return out(JSON.stringify({ at: Date.now(), servers, depth, busiest: rows }));
  const table = new Table(['TENANT', 'TUID', 'CLASS', 'DEPTH', 'IN/s', 'OUT/s', 'LAG', 'LOCK', 'DEAD']);
  const body = table.render(
    rows.map((r) => [
      r.tenant.join('/'),
      JSON.stringify(r.tuid),
      r.className,
      r.queueLength,
      rate(r.inRate),
      rate(r.outRate),
      ago(r.oldestAgeMs),
      r.lock ? 'held' : '-',
      r.deadLetters,
    ]),
  );
  const title = `dgen-ts top  ${spec}  ${new Date().toISOString()}  ${servers} servers, ${depth} queued  (Ctrl-C quits)`;
  // On a terminal, redraw in place; piped, print one block after another.
  await out((process.stdout.isTTY ? '\x1b[2J\x1b[H' : '') + `${title}\n${body}\n`);
}
