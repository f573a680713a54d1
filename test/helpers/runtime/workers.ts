import { fork, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '../../..');
const WORKER = path.join(__dirname, 'worker.ts');

export interface WorkerOptions {
  /** The SQLite file the worker opens by default (a `start` request may name another). */
  db?: string;
  /** The tenant path (default ['mp']). */
  tenant?: string[];
  /** Extra environment (DGEN_STALL_FROM, DGEN_HANG_LOCKED, …). */
  env?: Record<string, string>;
  /** Node flags for the child (e.g. --expose-gc). */
  nodeArgs?: string[];
  /**
   * The worker script (default worker.ts under ts-node). A `.js` path runs as plain JavaScript: the
   * benchmarks transpile the worker and src/ once so that a child's memory and start-up are the library's.
   */
  script?: string;
}

type Message = { type?: string; id?: number } & Record<string, unknown>;

/** The error a worker's request failed with, with its `code`. */
export class WorkerError extends Error {
  constructor(
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

/** One child process running worker.ts, driven over IPC. */
export class Worker {
  readonly pid: number;
  /** Every unsolicited message it sent (ready, event, stalling, locked). */
  readonly messages: Message[] = [];
  readonly exited: Promise<number | null>;
  /** Resolves once it has exited and its pipes (stdio, IPC) are closed: nothing of it is left here. */
  readonly closed: Promise<void>;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly listeners = new Set<() => void>();
  private stderr = '';
  private alive = true;

  constructor(readonly child: ChildProcess) {
    this.pid = child.pid!;
    this.closed = new Promise((resolve) => child.once('close', () => resolve()));
    child.stderr?.on('data', (d) => (this.stderr = (this.stderr + String(d)).slice(-4000)));
    child.stdout?.on('data', () => undefined);
    child.on('message', (m: Message) => {
      if (typeof m.id === 'number' && this.pending.has(m.id)) {
        const p = this.pending.get(m.id)!;
        this.pending.delete(m.id);
        if (m.ok) p.resolve(m.value);
        else
          p.reject(new WorkerError(m.code as string | undefined, `worker ${this.pid}: ${String(m.message)}`));
        return;
      }
      this.messages.push(m);
      for (const l of [...this.listeners]) l();
    });
    this.exited = new Promise((resolve) =>
      child.once('exit', (code) => {
        this.alive = false;
        for (const p of this.pending.values())
          p.reject(
            new WorkerError(
              'WORKER_EXITED',
              `worker ${this.pid} exited (${code}) before answering; stderr: ${this.stderr}`,
            ),
          );
        this.pending.clear();
        for (const l of [...this.listeners]) l();
        resolve(code);
      }),
    );
  }

  get isAlive(): boolean {
    return this.alive;
  }

  /** Sends a request and resolves with the worker's answer. */
  rpc<T = unknown>(op: string, args: Record<string, unknown> = {}, timeoutMs = 20_000): Promise<T> {
    if (!this.alive) return Promise.reject(new WorkerError('WORKER_EXITED', `worker ${this.pid} has exited`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new WorkerError(
            'RPC_TIMEOUT',
            `worker ${this.pid}: no answer to ${op} within ${timeoutMs} ms; stderr: ${this.stderr}`,
          ),
        );
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => (clearTimeout(timer), resolve(v as T)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.child.send({ id, op, ...args });
    });
  }

  /** Resolves with the first message (already received or coming) that satisfies `pred`. */
  waitFor(pred: (m: Message) => boolean, timeoutMs = 15_000, what = 'message'): Promise<Message> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.messages.find(pred);
        if (found) return done(() => resolve(found));
        if (!this.alive)
          return done(() =>
            reject(new Error(`worker ${this.pid} exited before ${what}; stderr: ${this.stderr}`)),
          );
      };
      const timer = setTimeout(
        () => done(() => reject(new Error(`worker ${this.pid}: no ${what} within ${timeoutMs} ms`))),
        timeoutMs,
      );
      const done = (f: () => void) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        f();
      };
      this.listeners.add(check);
      check();
    });
  }

  /** How many events of `type` (and `kind`, if given) the worker's refs reported so far. */
  count(type: string, kind?: string): number {
    return this.messages.filter(
      (m) =>
        m.type === 'event' &&
        (m.event as Message).type === type &&
        (kind === undefined || (m.event as Message).kind === kind),
    ).length;
  }

  /** Stops its refs and closes its backends (it keeps running), and forgets the messages it sent. */
  async reset(): Promise<void> {
    await this.rpc('reset');
    this.messages.length = 0;
  }

  /** kill -9, then wait until it is gone. */
  async kill9(): Promise<void> {
    if (this.alive) process.kill(this.pid, 'SIGKILL');
    await this.exited;
  }

  /** Stops its refs, closes its backend and waits for it to exit; kill -9 if that takes too long. */
  async exit(timeoutMs = 5000): Promise<void> {
    if (!this.alive) return;
    const t = setTimeout(() => void this.kill9(), timeoutMs);
    await this.rpc('exit', {}, timeoutMs).catch(() => undefined);
    await this.exited;
    clearTimeout(t);
  }
}

/** Starts worker processes and makes sure every one of them is gone at the end. */
export class Workers {
  private readonly started: Worker[] = [];

  /** Forks worker.ts under ts-node (transpile-only) and waits for it to open its backend. */
  async spawn(opts: WorkerOptions): Promise<Worker> {
    const script = opts.script ?? WORKER;
    const tsNode = script.endsWith('.ts') ? ['-r', 'ts-node/register/transpile-only'] : [];
    const child = fork(script, [], {
      cwd: ROOT,
      execArgv: [...(opts.nodeArgs ?? []), ...tsNode],
      env: {
        ...process.env,
        TS_NODE_PROJECT: path.join(ROOT, 'tsconfig.json'),
        TS_NODE_TRANSPILE_ONLY: 'true',
        ...(opts.db ? { DGEN_DB: opts.db } : {}),
        DGEN_TENANT: JSON.stringify(opts.tenant ?? ['mp']),
        ...opts.env,
      },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const w = new Worker(child);
    this.started.push(w);
    await w.waitFor((m) => m.type === 'ready', 30_000, 'ready');
    return w;
  }

  /** kill -9 every worker this object started that is still running, and wait for them. */
  async killAll(): Promise<void> {
    await Promise.all(this.started.map((w) => w.kill9()));
    await Promise.all(this.started.map((w) => w.closed));
  }
}

/** Polls `probe` until it returns a value `ok` accepts; rejects after `timeoutMs` with the last value. */
export async function waitUntil<T>(
  probe: () => Promise<T>,
  ok: (v: T) => boolean,
  timeoutMs = 15_000,
  everyMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T;
  for (;;) {
    last = await probe();
    if (ok(last)) return last;
    if (Date.now() > deadline)
      throw new Error(`condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
