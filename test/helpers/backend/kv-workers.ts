import { fork, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';

const WORKER = path.join(__dirname, 'kv-worker.ts');

/** A kv-worker.ts child process, driven over IPC. */
export class KvWorker {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  private readonly listeners = new Set<(m: any) => void>();
  private stderr = '';
  readonly exited: Promise<number | null>;

  private constructor(readonly child: ChildProcess) {
    child.stderr?.on('data', (d) => (this.stderr = (this.stderr + String(d)).slice(-4000)));
    child.on('message', (m: any) => {
      if (typeof m?.id === 'number' && this.pending.has(m.id)) {
        const p = this.pending.get(m.id)!;
        this.pending.delete(m.id);
        if (m.ok) p.resolve(m.value);
        else p.reject(Object.assign(new Error(`worker ${child.pid}: ${m.message}`), { code: m.code }));
      } else for (const l of this.listeners) l(m);
    });
    this.exited = new Promise((resolve) =>
      child.on('exit', (code) => {
        for (const p of this.pending.values()) p.reject(new Error(`worker exited (${code}): ${this.stderr}`));
        this.pending.clear();
        resolve(code);
      }),
    );
  }

  /** Forks a worker on `spec` (e.g. 'sqlite:/path/db.sqlite') and waits until it has opened it. */
  static async start(spec: string): Promise<KvWorker> {
    // ts-node (transpile-only) lets the child run the TypeScript sources directly.
    const child = fork(WORKER, [spec], {
      execArgv: ['-r', require.resolve('ts-node/register/transpile-only')],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1' },
    });
    const worker = new KvWorker(child);
    await new Promise<void>((resolve, reject) => {
      worker.onMessage((m) => m?.ready && resolve());
      void worker.exited.then((code) =>
        reject(new Error(`worker exited (${code}) before it was ready: ${worker.stderr}`)),
      );
    });
    return worker;
  }

  get pid(): number {
    return this.child.pid!;
  }

  request<T = unknown>(cmd: string, args?: Record<string, unknown>): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.send({ id, cmd, args });
    });
  }

  onMessage(listener: (m: any) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Closes the backend and lets the process exit. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await this.request('close').catch(() => undefined);
    await this.exited;
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    this.child.kill(signal);
    return this.exited;
  }
}
