import { BackendError } from '../../errors';

export type FdbModule = typeof import('foundationdb');

/** The FoundationDB API version dgen-ts is written against (supported by clients 6.2 and later). */
export const FDB_API_VERSION = 620;

/** The oldest API version whose versionstamp operations take the 4-byte offset FdbTransaction writes. */
export const MIN_API_VERSION = 520;

const HOW_TO_INSTALL =
  'install the FoundationDB client library (libfdb_c) for your platform from ' +
  'https://github.com/apple/foundationdb/releases (e.g. foundationdb-clients_<version>_amd64.deb on ' +
  'Debian/Ubuntu, the .rpm on RHEL, FoundationDB-<version>.pkg on macOS), then retry';

let loaded: Promise<FdbModule> | undefined;

/**
 * Loads the optional `foundationdb` package (and with it libfdb_c) the first time an fdb: backend is
 * opened, never before: memory and SQLite users need neither. Fails with BACKEND_UNAVAILABLE and
 * what to install.
 */
export function loadFoundationDb(): Promise<FdbModule> {
  loaded ??= load().catch((err) => {
    loaded = undefined; // let a later attempt (after installing) try again
    throw err;
  });
  return loaded;
}

async function load(): Promise<FdbModule> {
  let fdb: FdbModule;
  // The package prints its own hints to stderr before it throws; our error below says it all.
  const consoleError = console.error;
  console.error = () => {};
  try {
    fdb = await import('foundationdb');
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (/Cannot find module 'foundationdb'/.test(message))
      throw new BackendError(
        'BACKEND_UNAVAILABLE',
        `the fdb: backend needs the optional npm package 'foundationdb' (npm install foundationdb@^2) and the FoundationDB client: ${HOW_TO_INSTALL}`,
        { cause: err },
      );
    throw new BackendError(
      'BACKEND_UNAVAILABLE',
      `the FoundationDB client library could not be loaded (${message.split('\n')[0]}); ${HOW_TO_INSTALL}`,
      { cause: err },
    );
  } finally {
    console.error = consoleError;
  }
  try {
    fdb.setAPIVersion(FDB_API_VERSION);
  } catch (err) {
    // Already set by the application to another version: keep it if it is >= 520. Below 520 the
    // versionstamped key and value operations take a 2-byte placeholder offset instead of the 4-byte
    // one FdbTransaction writes (the package's own packVersionstamp picks by version), so every
    // versionstamped write would land at the wrong bytes. The package says which version is set:
    // 'foundationdb already initialized with API version N' (foundationdb/dist/lib/apiVersion.js).
    const set = /already initialized with API version (\d+)/.exec(String((err as Error)?.message));
    if (!set) throw err;
    if (Number(set[1]) < MIN_API_VERSION)
      throw new BackendError(
        'BACKEND_UNAVAILABLE',
        `the fdb: backend needs FoundationDB API version ${MIN_API_VERSION} or later, but this process already selected ${set[1]} (fdb.setAPIVersion); select ${FDB_API_VERSION}, or anything from ${MIN_API_VERSION} on`,
        { cause: err },
      );
  }
  return fdb;
}
