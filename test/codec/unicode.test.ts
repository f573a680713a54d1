/**
 * Text that UTF-8 cannot hold (a lone UTF-16 surrogate) is refused with a code wherever it would be
 * stored — state values, property names, id-list ids, messages, tenant paths — and every well-formed
 * string comes back exactly. Nothing is changed silently (issue #11).
 */
import fc from 'fast-check';
import { openBackend } from '../../src/backend/open-backend';
import { cborSerializer, decodeState, encodeState } from '../../src/codec';
import { DgenError } from '../../src/errors';
import { encodeWire, decodeWire } from '../../src/runtime/wire';
import { isWellFormed } from '../../src/text';

/** Any UTF-16 code units, lone surrogates included (fast-check's own units are whole code points). */
const codeUnit = fc
  .oneof(fc.integer({ min: 0xd800, max: 0xdfff }), fc.integer({ min: 0, max: 0xffff }))
  .map((c) => String.fromCharCode(c));
const anyText = fc.string({
  unit: fc.oneof(codeUnit, fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })),
  maxLength: 6,
});

/** Stores `value` (as the state codec does) and reads it back, or returns the error code. */
function roundTrip(value: unknown): { back: unknown } | { code: string } {
  try {
    const { entries } = encodeState(value);
    return { back: decodeState(entries)?.state };
  } catch (err) {
    if (!(err instanceof DgenError)) throw err;
    return { code: err.code };
  }
}

describe('lone surrogates', () => {
  test('states: a string as a value, a property name and an id comes back exactly or is NOT_SERIALIZABLE', () => {
    fc.assert(
      fc.property(anyText, anyText, (a, b) => {
        const state = {
          [a]: b,
          list: [
            { id: a, v: b },
            { id: `${a}.`, v: 1 },
          ],
          nested: { deep: [b] },
        };
        const r = roundTrip(state);
        if (isWellFormed(a) && isWellFormed(b)) expect(r).toStrictEqual({ back: state });
        else expect(r).toStrictEqual({ code: 'NOT_SERIALIZABLE' });
      }),
      { numRuns: 1000 },
    );
  });

  test('two ids differing only in a lone surrogate never merge', () => {
    expect(roundTrip([{ id: '\uD800' }, { id: '\uDC00' }, { id: '\uFFFD' }])).toStrictEqual({
      code: 'NOT_SERIALIZABLE',
    });
  });

  test('messages and replies (the wire): round-trip or NOT_SERIALIZABLE', () => {
    fc.assert(
      fc.property(anyText, (a) => {
        const value = { msg: a, map: new Map([[a, a]]), set: new Set([a]) };
        if (isWellFormed(a)) expect(decodeWire(encodeWire(value))).toStrictEqual(value);
        else expect(() => encodeWire(value)).toThrow(expect.objectContaining({ code: 'NOT_SERIALIZABLE' }));
      }),
      { numRuns: 1000 },
    );
    expect(() => cborSerializer.encode('\uDBFF')).toThrow(/lone UTF-16 surrogate/);
  });

  test('tenant paths: distinct or BAD_ARGUMENT, never the same tenant', async () => {
    const backend = await openBackend('memory:');
    try {
      await fc.assert(
        fc.asyncProperty(
          anyText.filter((s) => s.length > 0),
          async (a) => {
            const opened = backend.openTenant(['t', a]);
            if (isWellFormed(a)) {
              const tenant = await opened;
              await tenant.transact((tx) => tx.set(Buffer.from('k'), Buffer.from(a, 'utf8')));
            } else await expect(opened).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
          },
        ),
        { numRuns: 300 },
      );
    } finally {
      await backend.close();
    }
  });
});
