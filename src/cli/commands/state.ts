import { readServerState } from '../../ops/inspect';
import { toFaithfulJson } from '../../ops/faithful-json';
import { out, parseTenant, parseTuid, withBackend } from '../io';

/**
 * `state SPEC TENANT TUID`: the decoded state as JSON, Map/Set/Date/BigInt/bytes tagged with `$`
 * (see faithful-json.ts). `--json` prints it on one line with its version; otherwise indented.
 */
export async function stateCommand(
  spec: string,
  tenantText: string,
  tuidText: string,
  opts: { json?: boolean },
) {
  const path = parseTenant(tenantText);
  const tuid = parseTuid(tuidText);
  await withBackend(spec, async (backend) => {
    const { state, version } = await readServerState(await backend.openTenant(path), tuid);
    if (opts.json) await out(JSON.stringify({ tenant: path, tuid, version, state: toFaithfulJson(state) }));
    else await out(JSON.stringify(toFaithfulJson(state), null, 2));
  });
}
