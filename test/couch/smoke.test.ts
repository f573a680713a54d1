import 'reflect-metadata';
import { ChangesFollower, OnChange, follow, type ChangeRow } from '../../src/couch';
import { Init } from '../../src/decorators';
import { ok } from '../../src/returns';
import { describeTargets } from '../helpers/couch/targets';
import { startRecorded, writeDocs } from '../helpers/couch/follower-kit';

@ChangesFollower()
class Collect {
  @Init() init(url: string) {
    return follow(url, { ids: [] as string[] }, { heartbeat: 200, includeDocs: true });
  }
  @OnChange() change(row: ChangeRow, s: { ids: string[] }) {
    return ok({ ids: [...s.ids, row.id] });
  }
}

describeTargets('smoke', (target) => {
  it('follows a db', async () => {
    const t = target();
    const db = await t.createDb('smoke');
    await writeDocs(t.nano.use(db), 'a', 3);
    const { ref, events } = await startRecorded<{ ids: string[] }>(Collect, t.dbUrl(db));
    await events.waitCount('change', 3);
    await writeDocs(t.nano.use(db), 'b', 2);
    await events.waitCount('change', 5);
    expect((await ref.readState()).ids).toEqual(['a00000', 'a00001', 'a00002', 'b00000', 'b00001']);
    await events.waitCount('heartbeat', 1);
    await ref.stop();
    expect(await ref.done).toBe('normal');
  });
});
