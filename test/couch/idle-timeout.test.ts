import 'reflect-metadata';
import {
  ChangesFollower,
  OnChange,
  follow,
  type CallFrom,
  type ChangeRow,
  type DbTarget,
} from '../../src/couch';
import { Init, OnCall, OnCast, OnInfo } from '../../src/decorators';
import { Runtime } from '../../src/facade/runtime';
import { noreply, ok, reply } from '../../src/returns';
import { VirtualClock } from '../../src/testing';
import { describeTargets } from '../helpers/couch/targets';
import { waitFor, writeDocs } from '../helpers/couch/follower-kit';

interface Quiet {
  readonly timeouts: number;
  readonly rows: number;
}

@ChangesFollower()
class QuietWatcher {
  @Init() init(db: DbTarget) {
    return follow(db, { timeouts: 0, rows: 0 } as Quiet, { heartbeat: 300 });
  }
  @OnChange() change(_row: ChangeRow, s: Quiet) {
    return ok({ ...s, rows: s.rows + 1 });
  }
  @OnCast('arm') arm(m: { ms: number }, s: Quiet) {
    return noreply(s, [], { timeout: m.ms });
  }
  @OnCall('arm') armCall(m: { ms: number }, _f: CallFrom, s: Quiet) {
    return reply('armed', s, [], { timeout: m.ms });
  }
  @OnCall('get') get(_m: unknown, _f: CallFrom, s: Quiet) {
    return reply(s, s);
  }
  @OnInfo('timeout') timeout(_m: unknown, s: Quiet) {
    return noreply({ ...s, timeouts: s.timeouts + 1 });
  }
}

describeTargets('a follower idle timeout (issue #13)', (target) => {
  afterEach(() => Runtime.stopAll());

  it("noreply(s, [], { timeout }) delivers 'timeout' to @OnInfo after that much silence, once", async () => {
    const t = target();
    const clock = new VirtualClock();
    const ref = await Runtime.start(QuietWatcher, t.dbTarget(await t.createDb('idle')), { clock });
    await ref.cast({ type: 'arm', ms: 1_000 });
    await ref.call('get'); // the cast was handled (and this call disarmed it again)…
    expect(await ref.call({ type: 'arm', ms: 1_000 })).toBe('armed'); // …so arm it with a call
    await clock.advance(999);
    expect((await ref.readState()).timeouts).toBe(0);
    await clock.advance(1);
    await waitFor(async () => (await ref.readState()).timeouts === 1, 'the timeout info');
    await clock.advance(10_000);
    expect((await ref.readState()).timeouts).toBe(1); // handling 'timeout' armed nothing new
  });

  it('any message or change row handled meanwhile disarms it', async () => {
    const t = target();
    const db = await t.createDb('idle-rows');
    const clock = new VirtualClock();
    const ref = await Runtime.start(QuietWatcher, t.dbTarget(db), { clock });
    expect(await ref.call({ type: 'arm', ms: 1_000 })).toBe('armed');
    await writeDocs(t.nano.use(db), 'a', 1);
    await waitFor(async () => (await ref.readState()).rows === 1, 'the row');
    await clock.advance(5_000);
    expect((await ref.readState()).timeouts).toBe(0);
    expect(await ref.call({ type: 'arm', ms: Infinity })).toBe('armed'); // Infinity: none
    await clock.advance(5_000);
    expect((await ref.readState()).timeouts).toBe(0);
  });

  it('a clock that is not a Clock is BAD_ARGUMENT', async () => {
    await expect(
      Runtime.start(QuietWatcher, target().dbTarget('x'), { clock: {} as never }),
    ).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
  });
});
