import 'reflect-metadata';
import { openBackend } from '../../src/backend/open-backend';
import type { Backend } from '../../src/backend/types';
import { ChangesFollower, OnChange, follow, type ChangeRow, type DbTarget } from '../../src/couch';
import { DurableServer, Init } from '../../src/decorators';
import { Runtime } from '../../src/facade/runtime';
import { ok } from '../../src/returns';
import { describeTargets } from '../helpers/couch/targets';
import { Behaviour, behaviourSuite, INITIAL, type BehaviourState, type UnderTest } from './behaviour-suite';

@DurableServer()
class DurableBehaviour extends Behaviour {
  @Init() init() {
    return ok(INITIAL);
  }
}

@ChangesFollower()
class FollowerBehaviour extends Behaviour {
  @Init() init(db: DbTarget) {
    return follow(db, INITIAL, { heartbeat: 300 });
  }
  @OnChange() change(_row: ChangeRow, s: BehaviourState) {
    return ok(s);
  }
}

describe('one kernel, one behaviour (issue #12)', () => {
  let backend: Backend;
  beforeAll(async () => {
    backend = await openBackend('memory:');
  });
  afterAll(async () => {
    await Runtime.stopAll();
    await backend.close();
  });

  behaviourSuite('durable server (memory:)', () => ({
    start: async () => {
      const tenant = await backend.openTenant(['behaviour', String(Math.random())]);
      return (await Runtime.start(DurableBehaviour, undefined, {
        tenant,
        maxAttempts: 1,
      })) as unknown as UnderTest;
    },
  }));

  describeTargets('follower', (target) => {
    let db: string;
    beforeAll(async () => {
      db = await target().createDb('behaviour');
    });
    behaviourSuite('changes follower', () => ({
      start: async () =>
        (await Runtime.start(FollowerBehaviour, target().dbTarget(db))) as unknown as UnderTest,
    }));
  });
});
