import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * CPU ticks (1/100 s, user + system) of a PostgreSQL server's processes, the postmaster and its
 * children, read from /proc for a server whose data directory is `dataDir` (one started by the run):
 * what the server spent on our statements, beside the client's CPU. Exited backends are not counted.
 */
export function serverTicks(dataDir: string): number {
  const postmaster = Number(fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  let ticks = 0;
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pid) === postmaster || Number(f[1]) === postmaster) ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // gone meanwhile
    }
  }
  return ticks;
}
