import { Dashboard } from '../../ops/dashboard/http-server';
import { openSpec, out } from '../io';

export interface DashboardCliOptions {
  port: number;
  interval: number;
}

/** `dashboard SPEC --port N`: serves the dashboard on 127.0.0.1 until Ctrl-C. */
export async function dashboardCommand(spec: string, opts: DashboardCliOptions): Promise<void> {
  const backend = await openSpec(spec);
  const dashboard = new Dashboard(backend, { port: opts.port, intervalMs: opts.interval });
  try {
    const url = await dashboard.start();
    await out(`dgen-ts dashboard on ${url} (Ctrl-C stops it)`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
  } finally {
    await dashboard.stop();
    await backend.close();
  }
}
