import { BadArgumentError } from '../errors';

/** Credentials sent as HTTP basic auth. */
export interface BasicAuth {
  readonly username: string;
  readonly password: string;
}

/**
 * The database to follow: its URL (`http://host:5984/db`, credentials in the URL are allowed), or
 * the URL with basic auth and extra headers (e.g. a cookie or a proxy's token).
 */
export type DbTarget =
  | string
  | {
      readonly url: string;
      readonly auth?: BasicAuth;
      readonly headers?: Readonly<Record<string, string>>;
    };

/** A validated target: the `_changes` URL (no credentials in it) and the headers every request sends. */
export interface ResolvedDb {
  /** The database URL without credentials, for messages and events. */
  readonly url: string;
  readonly changesUrl: URL;
  readonly headers: Readonly<Record<string, string>>;
}

const bad = (what: string) =>
  new BadArgumentError(
    'BAD_ARGUMENT',
    `follow(db, …): ${what}; pass 'http://host:5984/dbname' or { url, auth?: { username, password }, headers? }`,
  );

/**
 * Checks a db target and turns it into what a request needs. Credentials embedded in the URL move to
 * an Authorization header (fetch refuses URLs that carry them).
 */
export function resolveDb(db: unknown): ResolvedDb {
  const spec = typeof db === 'string' ? { url: db } : db;
  if (typeof spec !== 'object' || spec === null)
    throw bad(`db must be a URL string or an object (got ${typeof db})`);
  const { url, auth, headers } = spec as { url?: unknown; auth?: unknown; headers?: unknown };
  if (typeof url !== 'string' || url.length === 0) throw bad('db.url must be a non-empty string');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw bad(`${JSON.stringify(url)} is not a valid URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw bad(`the URL must be http: or https: (got ${parsed.protocol})`);
  const path = parsed.pathname.replace(/\/+$/, '');
  if (path.length <= 1)
    throw bad(`the URL ${JSON.stringify(url)} names no database (it needs a path, e.g. /mydb)`);
  if (parsed.search || parsed.hash)
    throw bad('the URL must not carry a query or fragment; put feed parameters in the options');

  // identity: a compressing server or proxy buffers output, which would hold back rows and heartbeats
  const out: Record<string, string> = { accept: 'application/json', 'accept-encoding': 'identity' };
  let user = decodeURIComponent(parsed.username);
  let pass = decodeURIComponent(parsed.password);
  if (auth !== undefined) {
    const a = auth as { username?: unknown; password?: unknown };
    if (
      typeof auth !== 'object' ||
      auth === null ||
      typeof a.username !== 'string' ||
      typeof a.password !== 'string'
    )
      throw bad('db.auth must be { username: string, password: string }');
    user = a.username;
    pass = a.password;
  }
  if (user || pass) out.authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
  if (headers !== undefined) {
    if (typeof headers !== 'object' || headers === null || Array.isArray(headers))
      throw bad('db.headers must be an object of strings');
    for (const [name, value] of Object.entries(headers)) {
      if (typeof value !== 'string') throw bad(`header ${JSON.stringify(name)} must be a string`);
      out[name.toLowerCase()] = value;
    }
  }
  parsed.username = '';
  parsed.password = '';
  parsed.pathname = path;
  const base = parsed.toString();
  return { url: base, changesUrl: new URL(`${base}/_changes`), headers: out };
}
