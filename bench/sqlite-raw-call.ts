/**
 * The floor of a cross-process durable call on SQLite (issue #10), hand-written on better-sqlite3, no
 * dgen-ts: what `server.sqlite.call_xproc_p50_ms` would be with nothing of ours in the way, on the same
 * machine and disk. Two processes share one file in WAL mode; each wakes the other as dgen-ts does, by
 * writing one byte to a side file the other watches (`fs.watch`, inotify), after its commit returned.
 * - the caller: pushes (INSERT of the item at synchronous = NORMAL, no fsync, as dgen-ts's push), then
 *   waits for its wake-up and reads the reply;
 * - the consumer, in a child process: on its wake-up, BEGIN IMMEDIATE, reads the head item and the
 *   state, computes, writes the state, deletes the item, writes the reply, COMMIT at synchronous = FULL
 *   (one fsync, which also makes the push durable), then wakes the caller.
 * Per call: p50, p99, CPU µs of each process.
 *
 *   npx ts-node --transpile-only bench/sqlite-raw-call.ts      # N=2000
 */
import { fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { runMain } from './run-main';

const N = Number(process.env.N ?? 2000);
const WARM = 200;
const ONE = Buffer.from([1]);

function open(file: string): Database.Database {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 5000');
  return db;
}

/** Watches `file` for the other side's byte; `onWake` runs at each change event. */
function watchNotice(file: string, onWake: () => void): fs.FSWatcher {
  return fs.watch(file, { persistent: true }, onWake);
}

function consumer(dir: string): void {
  const db = open(path.join(dir, 'db'));
  db.pragma('synchronous = FULL');
  const head = db.prepare<[], { id: number; value: Buffer }>('SELECT id, value FROM q ORDER BY id LIMIT 1');
  const state = db.prepare<[], { n: number }>('SELECT n FROM state WHERE k = 1');
  const setState = db.prepare('UPDATE state SET n = ? WHERE k = 1');
  const pop = db.prepare('DELETE FROM q WHERE id = ?');
  const reply = db.prepare('INSERT OR REPLACE INTO replies (id, value) VALUES (?, ?)');
  const begin = db.prepare('BEGIN IMMEDIATE');
  const commit = db.prepare('COMMIT');
  const toCaller = fs.openSync(path.join(dir, 'to-caller'), 'r+');
  const drain = () => {
    for (;;) {
      begin.run();
      const item = head.get();
      if (!item) {
        commit.run();
        return;
      }
      const n = state.get()!.n + 1;
      setState.run(n);
      pop.run(item.id);
      reply.run(item.id, Buffer.from(String(n)));
      commit.run();
      fs.writeSync(toCaller, ONE, 0, 1, 0);
    }
  };
  watchNotice(path.join(dir, 'to-consumer'), drain);
  process.on('message', (m) => {
    if (m === 'cpu') process.send!(process.cpuUsage());
  });
  process.send!('ready');
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sqlite-raw-call-'));
  const db = open(path.join(dir, 'db'));
  db.exec(`CREATE TABLE q (id INTEGER PRIMARY KEY, value BLOB NOT NULL);
    CREATE TABLE state (k INTEGER PRIMARY KEY, n INTEGER NOT NULL);
    CREATE TABLE replies (id INTEGER PRIMARY KEY, value BLOB NOT NULL);
    INSERT INTO state VALUES (1, 0);`);
  db.pragma('synchronous = NORMAL');
  for (const f of ['to-consumer', 'to-caller']) fs.writeFileSync(path.join(dir, f), ONE);
  const child = fork(__filename, ['consumer', dir], { execArgv: process.execArgv });
  await new Promise((resolve) => child.once('message', resolve));
  const push = db.prepare('INSERT INTO q (value) VALUES (?)');
  const readReply = db.prepare<[number], { value: Buffer }>('SELECT value FROM replies WHERE id = ?');
  const clearReply = db.prepare('DELETE FROM replies WHERE id = ?');
  const toConsumer = fs.openSync(path.join(dir, 'to-consumer'), 'r+');
  let waiting: (() => void) | undefined;
  const watcher = watchNotice(path.join(dir, 'to-caller'), () => waiting?.());
  const message = Buffer.alloc(100, 7);
  const times: number[] = [];
  let cpu0 = process.cpuUsage();
  let theirs0: NodeJS.CpuUsage = { user: 0, system: 0 };
  const theirCpu = () =>
    new Promise<NodeJS.CpuUsage>((resolve) => {
      child.once('message', (m) => resolve(m as NodeJS.CpuUsage));
      child.send('cpu');
    });
  let lastId = 0;
  for (let i = 0; i < N + WARM; i++) {
    if (i === WARM) [cpu0, theirs0] = [process.cpuUsage(), await theirCpu()];
    const t = performance.now();
    if (lastId) clearReply.run(lastId); // the previous reply, in this push's commit as dgen-ts does
    const id = Number(push.run(message).lastInsertRowid);
    fs.writeSync(toConsumer, ONE, 0, 1, 0);
    for (;;) {
      const got = readReply.get(id);
      if (got) break;
      await new Promise<void>((resolve) => (waiting = resolve));
      waiting = undefined;
    }
    lastId = id;
    if (i >= WARM) times.push(performance.now() - t);
  }
  const mine = process.cpuUsage(cpu0);
  const theirs = await theirCpu();
  times.sort((a, b) => a - b);
  console.log(
    JSON.stringify({
      calls: N,
      p50_ms: Number(times[N >> 1].toFixed(3)),
      p99_ms: Number(times[Math.floor(N * 0.99)].toFixed(3)),
      calls_per_s: Math.round(N / (times.reduce((a, b) => a + b, 0) / 1000)),
      caller_cpu_us: Math.round((mine.user + mine.system) / N),
      consumer_cpu_us: Math.round((theirs.user - theirs0.user + theirs.system - theirs0.system) / N),
    }),
  );
  watcher.close();
  child.kill('SIGKILL');
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
}

if (process.argv[2] === 'consumer') consumer(process.argv[3]);
else runMain(main);
