import { BadArgumentError } from '../../errors';

/** Options for a `postgres://` backend (`openBackend(url, { postgres: {...} })`). */
export interface PostgresBackendOptions {
  /** Connections for transactions and reads (10). One more is opened for LISTEN once a watch exists. */
  poolSize?: number;
  /** The schema holding dgen's tables, created if missing ('dgen'). One schema is one key space. */
  schema?: string;
  /** How long to wait for a connection to the server before BACKEND_UNAVAILABLE (10 000 ms). */
  connectTimeoutMs?: number;
  /**
   * The server-side `statement_timeout` of every connection (15 000 ms): a guard against a statement
   * stuck on the server; transaction bodies have their own 5 s limit.
   */
  statementTimeoutMs?: number;
}

/** The options of one backend, checked, with the connection URL and a form of it safe to print. */
export interface PostgresSettings {
  url: string;
  /** The URL with its password replaced by `***`: the only form that goes into messages. */
  safeUrl: string;
  password: string;
  schema: string;
  poolSize: number;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
}

const KNOWN = new Set(['poolSize', 'schema', 'connectTimeoutMs', 'statementTimeoutMs']);
const ACCEPTED = "'postgres://user:password@host:5432/database'";

/** `scheme://user:password@host` → `scheme://user:***@host`, also for strings `URL` cannot parse. */
export function redactUrl(spec: string): string {
  return spec.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@?#]*):[^@/?#]*@/i, '$1:***@');
}

function positiveInt(name: string, value: unknown, dflt: number): number {
  if (value === undefined) return dflt;
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0)
    throw new BadArgumentError(
      'BAD_ARGUMENT',
      `postgres option ${name} must be a positive integer (got ${String(value)})`,
    );
  return value;
}

export function parsePostgresSpec(spec: string, options: PostgresBackendOptions = {}): PostgresSettings {
  const safeUrl = redactUrl(spec);
  let url: URL;
  try {
    url = new URL(spec);
  } catch {
    throw new BadArgumentError(
      'BAD_BACKEND_SPEC',
      `not a valid PostgreSQL URL: ${JSON.stringify(safeUrl)}, expected e.g. ${ACCEPTED}`,
    );
  }
  if ((url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') || url.hostname === '')
    throw new BadArgumentError(
      'BAD_BACKEND_SPEC',
      `a PostgreSQL URL needs a host, e.g. ${ACCEPTED} (got ${JSON.stringify(safeUrl)})`,
    );
  if (url.port !== '' && !(Number(url.port) > 0))
    throw new BadArgumentError('BAD_BACKEND_SPEC', `bad port in ${JSON.stringify(safeUrl)}`);
  if (options === null || typeof options !== 'object')
    throw new BadArgumentError('BAD_ARGUMENT', 'postgres options must be an object');
  for (const name of Object.keys(options))
    if (!KNOWN.has(name))
      throw new BadArgumentError(
        'BAD_ARGUMENT',
        `unknown postgres option ${JSON.stringify(name)}; known: ${[...KNOWN].join(', ')}`,
      );
  const schema = options.schema ?? 'dgen';
  if (typeof schema !== 'string' || !/^[a-z_][a-z0-9_]{0,62}$/.test(schema))
    throw new BadArgumentError(
      'BAD_ARGUMENT',
      `postgres option schema must be a lower-case SQL identifier ([a-z_][a-z0-9_]*, at most 63 characters; got ${JSON.stringify(schema)})`,
    );
  return {
    url: spec,
    safeUrl,
    password: decodeURIComponent(url.password),
    schema,
    poolSize: positiveInt('poolSize', options.poolSize, 10),
    connectTimeoutMs: positiveInt('connectTimeoutMs', options.connectTimeoutMs, 10_000),
    statementTimeoutMs: positiveInt('statementTimeoutMs', options.statementTimeoutMs, 15_000),
  };
}

/** Removes every trace of the password from a message (servers and clients may echo parts of the URL). */
export function scrub(
  message: string,
  settings: Pick<PostgresSettings, 'url' | 'safeUrl' | 'password'>,
): string {
  let out = message.split(settings.url).join(settings.safeUrl);
  if (settings.password.length > 0) {
    out = out.split(settings.password).join('***');
    const encoded = encodeURIComponent(settings.password);
    if (encoded !== settings.password) out = out.split(encoded).join('***');
  }
  return out;
}
