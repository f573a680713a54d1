import type { Stmt } from './write-buffer';
import type { Statements } from './schema';

type Row = Record<string, unknown>;
interface Pending {
  key: Buffer;
  resolve: (value: Buffer | undefined) => void;
  reject: (err: unknown) => void;
}

/**
 * The gets a transaction body asks for together (in the same microtask run, as `Promise.all` of
 * several reads does), sent as ONE statement (`getMany`) instead of one each. Every statement costs
 * the client a query object, a Bind and a reply to parse, and the server a bind, an execution and a
 * ReadyForQuery: a consumer's transactions read four to seven single keys at once. A lone get goes as
 * the plain `get`. The transaction flushes these before it buffers a write (a get asked for before a
 * write must not see it) and before it commits.
 */
export class GetBatch {
  private pending: Pending[] | undefined;

  constructor(
    private readonly st: Statements,
    /** Sends a read with the ready writes (StatementPipeline.query). */
    private readonly send: (stmt: Stmt) => Promise<Row[]>,
  ) {}

  get(key: Buffer): Promise<Buffer | undefined> {
    return new Promise((resolve, reject) => {
      if (!this.pending) {
        this.pending = [];
        queueMicrotask(() => this.flush());
      }
      this.pending.push({ key, resolve, reject });
    });
  }

  /** Sends the gets asked for so far. */
  flush(): void {
    const batch = this.pending;
    this.pending = undefined;
    if (!batch || batch.length === 0) return;
    if (batch.length === 1) {
      const [one] = batch;
      this.send({ text: this.st.get, params: [one.key] }).then(
        (rows) => one.resolve(rows[0] ? (rows[0].value as Buffer) : undefined),
        one.reject,
      );
      return;
    }
    const hex = batch.map((b) => b.key.toString('hex'));
    this.send({ text: this.st.getMany, params: [[...new Set(hex)].join(',')] }).then(
      (rows) => {
        const byHex = new Map(rows.map((r) => [(r.key as Buffer).toString('hex'), r.value as Buffer]));
        batch.forEach((b, i) => b.resolve(byHex.get(hex[i])));
      },
      (err: unknown) => {
        for (const b of batch) b.reject(err);
      },
    );
  }
}
