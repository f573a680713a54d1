import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Backend } from '../../backend/types';
import { checkTenantPath } from '../../backend/common/tenant-path';
import { BadArgumentError, DgenError } from '../../errors';
import type { Tuid } from '../../returns';
import { ServerKeys } from '../../runtime/server-keys';
import { purgeDeadLetters, readDeadLetters, requeueDeadLetters } from '../dead-letters';
import { toFaithfulJson } from '../faithful-json';
import { describeServer, readServerState } from '../inspect';
import { Sampler, serverId, type Sample } from '../sampler';
import { PAGE } from './page';

export interface DashboardOptions {
  port: number;
  /** Sampling period in ms (1000). */
  intervalMs?: number;
  /** Samples of history kept per server for the charts (300: five minutes at 1 s). */
  historySize?: number;
  /** Most servers shown (the busiest first): 200. */
  maxServers?: number;
}

interface Row extends Sample {
  history: Array<[number, number, number | null]>; // [ms, depth, enqueue rate]
}

/**
 * The dashboard: a plain HTML page and the JSON endpoints behind it, served on 127.0.0.1 only. A
 * sampler lists the servers every interval and keeps a short history of each one's depth and rate.
 * Writes (requeue, purge) are POSTs with a JSON body: a browser cannot send those cross-origin
 * without a preflight we never answer, and the Host header must be ours (no DNS rebinding).
 */
export class Dashboard {
  private server?: Server;
  private timer?: NodeJS.Timeout;
  private rows = new Map<string, Row>();
  private sampling?: Promise<void>;
  private lastError?: string;
  private readonly sampler: Sampler;
  private port = 0;

  constructor(
    private readonly backend: Backend,
    private readonly opts: DashboardOptions,
  ) {
    this.sampler = new Sampler(backend);
  }

  /** Starts sampling and listening; resolves with the URL. */
  async start(): Promise<string> {
    await this.sample();
    this.timer = setInterval(() => void this.sample(), this.opts.intervalMs ?? 1000);
    this.server = createServer((req, res) => void this.route(req, res));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.opts.port, '127.0.0.1', resolve);
    });
    this.port = (this.server.address() as { port: number }).port;
    return `http://127.0.0.1:${this.port}/`;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server?.closeAllConnections?.();
    await this.sampling;
  }

  private sample(): Promise<void> {
    if (this.sampling) return this.sampling;
    const max = this.opts.maxServers ?? 200;
    const keep = this.opts.historySize ?? 300;
    const next = new Map<string, Row>();
    this.sampling = this.sampler
      .sample((s) => {
        const id = serverId(s);
        const history = this.rows.get(id)?.history ?? [];
        history.push([Date.now(), s.queueLength, s.inRate]);
        if (history.length > keep) history.splice(0, history.length - keep);
        next.set(id, { ...s, history });
        if (next.size > max * 2) trim(next, max);
      })
      .then(
        () => {
          trim(next, max);
          this.rows = next;
          this.lastError = undefined;
        },
        (err: unknown) => {
          this.lastError = err instanceof DgenError ? `${err.code}: ${err.message}` : String(err);
        },
      )
      .finally(() => (this.sampling = undefined));
    return this.sampling;
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      if (req.headers.host !== `127.0.0.1:${this.port}` && req.headers.host !== `localhost:${this.port}`)
        return send(res, 403, { error: 'FORBIDDEN', message: 'unexpected Host header' });
      const url = new URL(req.url ?? '/', `http://127.0.0.1:${this.port}`);
      if (req.method === 'GET' && url.pathname === '/') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
        return void res.end(PAGE);
      }
      if (req.method === 'GET' && url.pathname === '/api/servers')
        return send(res, 200, {
          at: Date.now(),
          error: this.lastError ?? null,
          servers: [...this.rows.values()].map((r) => ({ ...r, tuid: [...r.tuid] })),
        });
      if (req.method === 'GET' && url.pathname === '/api/state') {
        const { tenant, tuid } = target(url.searchParams.get('tenant'), url.searchParams.get('tuid'));
        const t = await this.backend.openTenant(tenant);
        const { state, version } = await readServerState(t, tuid);
        return send(res, 200, { version, state: toFaithfulJson(state) });
      }
      if (req.method === 'GET' && url.pathname === '/api/dead-letters') {
        const { tenant, tuid } = target(url.searchParams.get('tenant'), url.searchParams.get('tuid'));
        const t = await this.backend.openTenant(tenant);
        await describeServer(t, tuid);
        const letters = await t.read((tx) => readDeadLetters(tx, new ServerKeys(tuid)));
        return send(res, 200, { letters: letters.map((l) => ({ ...l, msg: toFaithfulJson(l.msg) })) });
      }
      const write = /^\/api\/dead-letters\/(requeue|purge)$/.exec(url.pathname);
      if (req.method === 'POST' && write) {
        if (!/^application\/json\b/.test(req.headers['content-type'] ?? ''))
          return send(res, 415, { error: 'BAD_REQUEST', message: 'send application/json' });
        const body = JSON.parse((await readBody(req)) || '{}') as {
          tenant?: string;
          tuid?: string;
          ids?: string[];
        };
        const { tenant, tuid } = target(body.tenant ?? null, body.tuid ?? null);
        const t = await this.backend.openTenant(tenant);
        await describeServer(t, tuid);
        const n =
          write[1] === 'requeue'
            ? await requeueDeadLetters(t, tuid, body.ids)
            : await purgeDeadLetters(t, tuid, body.ids);
        void this.sample();
        return send(res, 200, { [write[1] === 'requeue' ? 'requeued' : 'purged']: n });
      }
      send(res, 404, { error: 'NOT_FOUND', message: `no ${req.method} ${url.pathname}` });
    } catch (err) {
      const status =
        err instanceof BadArgumentError || err instanceof SyntaxError
          ? 400
          : err instanceof DgenError && err.code === 'NOT_FOUND'
            ? 404
            : 500;
      send(res, status, {
        error: err instanceof DgenError ? err.code : 'BAD_REQUEST',
        message: (err as Error)?.message ?? String(err),
      });
    }
  }
}

/** Keeps the `max` busiest rows (depth, then enqueue rate). */
function trim(rows: Map<string, Row>, max: number): void {
  if (rows.size <= max) return;
  const keep = [...rows.entries()]
    .sort(([, a], [, b]) => b.queueLength - a.queueLength || (b.inRate ?? 0) - (a.inRate ?? 0))
    .slice(0, max);
  rows.clear();
  for (const [k, v] of keep) rows.set(k, v);
}

function target(tenant: string | null, tuid: string | null): { tenant: readonly string[]; tuid: Tuid } {
  if (!tenant || !tuid) throw new BadArgumentError('BAD_ARGUMENT', 'tenant and tuid are required');
  const parsed: unknown = JSON.parse(tuid);
  if (
    !Array.isArray(parsed) ||
    parsed.length === 0 ||
    !parsed.every((p) => typeof p === 'string' || typeof p === 'number')
  )
    throw new BadArgumentError('BAD_ARGUMENT', 'tuid is a JSON array of strings and numbers');
  return { tenant: checkTenantPath(tenant.split('/')), tuid: parsed as Tuid };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

function readBody(req: IncomingMessage, limit = 1_000_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => {
      size += d.length;
      if (size > limit) {
        reject(new BadArgumentError('BAD_ARGUMENT', 'request body too large'));
        req.destroy();
      } else parts.push(d);
    });
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}
