import { Command, InvalidArgumentError } from 'commander';
import { dashboardCommand } from './commands/dashboard';
import { deadLettersCommand } from './commands/dead-letters';
import { serversCommand } from './commands/servers';
import { stateCommand } from './commands/state';
import { topCommand } from './commands/top';

const positiveInt = (name: string) => (text: string) => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer`);
  return n;
};

const port = (text: string) => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError('--port must be an integer from 0 (any free port) to 65535');
  return n;
};

const SPEC = "backend spec: 'sqlite:PATH', 'postgres://…' or 'fdb:[CLUSTER_FILE]'";

/** The `dgen-ts` command line (commander): every command is read-only unless it says otherwise. */
export function buildProgram(): Command {
  const program = new Command('dgen-ts')
    .description('Inspect and operate dgen-ts durable servers in a backend')
    .showHelpAfterError(false);

  program
    .command('servers')
    .description('list every indexed server: queue, oldest message age, lock, dead letters, state size')
    .argument('<spec>', SPEC)
    .option('--tenant <path>', 'only the tenant at this path, e.g. app/counters')
    .option('--json', 'a JSON array (streamed)')
    .action((spec: string, o: { tenant?: string; json?: boolean }) => serversCommand(spec, o));

  program
    .command('state')
    .description("print a server's decoded state as JSON (Map/Set/Date/BigInt/bytes tagged with $)")
    .argument('<spec>', SPEC)
    .argument('<tenant>', 'tenant path, e.g. app/counters')
    .argument('<tuid>', 'the tuid as `servers` prints it, e.g. \'["counter","c1"]\'')
    .option('--json', 'one line with the tenant, tuid and state version')
    .action((spec: string, tenant: string, tuid: string, o: { json?: boolean }) =>
      stateCommand(spec, tenant, tuid, o),
    );

  program
    .command('dead-letters')
    .description("list a server's dead letters; --requeue or --purge WRITE (and say what they changed)")
    .argument('<spec>', SPEC)
    .argument('<tenant>', 'tenant path')
    .argument('<tuid>', 'the tuid as `servers` prints it')
    .option('--requeue [ids...]', 'WRITES: put these letters (or --all) back at the end of the queue')
    .option('--purge [ids...]', 'WRITES: delete these letters (or --all)')
    .option('--all', 'every dead letter of the server (with --requeue or --purge)')
    .option('--json', 'JSON output')
    .action((spec: string, tenant: string, tuid: string, o) => deadLettersCommand(spec, tenant, tuid, o));

  program
    .command('top')
    .description('a live view of the busiest queues (depth, enqueue/handle rate, lag) until Ctrl-C')
    .argument('<spec>', SPEC)
    .option('--tenant <path>', 'only this tenant')
    .option('--interval <ms>', 'refresh period', positiveInt('--interval'), 1000)
    .option('--iterations <n>', 'stop after n refreshes', positiveInt('--iterations'))
    .option('--limit <n>', 'rows shown', positiveInt('--limit'), 20)
    .option('--json', 'one JSON line per refresh')
    .action((spec: string, o) => topCommand(spec, o));

  program
    .command('dashboard')
    .description(
      'serve a live dashboard on 127.0.0.1 (queues, rates, locks, dead letters, state) until Ctrl-C',
    )
    .argument('<spec>', SPEC)
    .requiredOption('--port <n>', 'port on 127.0.0.1 (0: any free port, printed)', port)
    .option('--interval <ms>', 'sampling period', positiveInt('--interval'), 1000)
    .action((spec: string, o: { port: number; interval: number }) => dashboardCommand(spec, o));

  return program;
}
