import fc from 'fast-check';
import { PersistentMap } from '../../src/codec/persistent-map';

describe('PersistentMap', () => {
  test('behaves as a copied Map through any sequence of changes, and old versions stay intact', () => {
    const change = fc.tuple(fc.integer({ min: 0, max: 60 }), fc.option(fc.integer(), { nil: null }));
    fc.assert(
      fc.property(fc.array(fc.array(change, { maxLength: 8 }), { maxLength: 80 }), (batches) => {
        const models: Map<number, number>[] = [new Map()];
        const versions: PersistentMap<number, number>[] = [PersistentMap.of(new Map())];
        for (const batch of batches) {
          const model = new Map(models[models.length - 1]);
          const changes = new Map<number, number | null>();
          for (const [k, v] of batch) {
            changes.set(k, v);
          }
          for (const [k, v] of changes) {
            if (v === null) model.delete(k);
            else model.set(k, v);
          }
          models.push(model);
          versions.push(versions[versions.length - 1].with(changes));
        }
        versions.forEach((pm, i) => {
          const model = models[i];
          expect(pm.size).toBe(model.size);
          expect(new Map(pm.entries())).toEqual(model);
          for (let k = 0; k <= 60; k++) expect(pm.get(k)).toBe(model.get(k));
        });
      }),
      { numRuns: 200 },
    );
  });
});
