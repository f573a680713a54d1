import { Command, InvalidArgumentError } from 'commander';

// Each command's module is loaded when it runs (the dashboard's server and page are not loaded to
// list servers): start-up counts in every scripted call.
const servers = () => import('./commands/servers');
const state = () => import('./commands/state');
const deadLetters = () => import('./commands/dead-letters');
const top = () => import('./commands/top');
const dashboard = () => import('./commands/dashboard');

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
    .action(async (spec: string, o: { tenant?: string; json?: boolean }) =>
      (await servers()).serversCommand(spec, o),
    );

  program
    .command('state')
    .description("print a server's decoded state as JSON (Map/Set/Date/BigInt/bytes tagged with $)")
    .argument('<spec>', SPEC)
    .argument('<tenant>', 'tenant path, e.g. app/counters')
    .argument('<tuid>', 'the tuid as `servers` prints it, e.g. \'["counter","c1"]\'')
    .option('--json', 'one line with the tenant, tuid and state version')
    .action(async (spec: string, tenant: string, tuid: string, o: { json?: boolean }) =>
      (await state()).stateCommand(spec, tenant, tuid, o),
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
    .action(async (spec: string, tenant: string, tuid: string, o) =>
      (await deadLetters()).deadLettersCommand(spec, tenant, tuid, o),
    );

  program
    .command('top')
    .description('a live view of the busiest queues (depth, enqueue/handle rate, lag) until Ctrl-C')
    .argument('<spec>', SPEC)
    .option('--tenant <path>', 'only this tenant')
    .option('--interval <ms>', 'refresh period', positiveInt('--interval'), 1000)
    .option('--iterations <n>', 'stop after n refreshes', positiveInt('--iterations'))
    .option('--limit <n>', 'rows shown', positiveInt('--limit'), 20)
    .option('--json', 'one JSON line per refresh')
    .action(async (spec: string, o) => (await top()).topCommand(spec, o));

  program
    .command('dashboard')
    .description(
      'serve a live dashboard on 127.0.0.1 (queues, rates, locks, dead letters, state) until Ctrl-C',
    )
    .argument('<spec>', SPEC)
    .requiredOption('--port <n>', 'port on 127.0.0.1 (0: any free port, printed)', port)
    .option('--interval <ms>', 'sampling period', positiveInt('--interval'), 1000)
    .action(async (spec: string, o: { port: number; interval: number }) =>
      (await dashboard()).dashboardCommand(spec, o),
    );

  return program;
}
