/** The state codec: how a server's state becomes keys and values, and comes back. */
export { cborSerializer, isCheckedSerializer, type CheckedSerializer, type Serializer } from './serializer';
export {
  formatPath,
  inspectValue,
  newInspection,
  rootPath,
  type Inspection,
  type ValuePath,
} from './serializable';
export { after, before, between, first, isFracKey, nBetween, nFirst, FRAC_DIGITS } from './frac-index';
export { StateSnapshot, type StateEntry } from './state-snapshot';
export {
  CHUNK_BYTES,
  PATH_BUDGET_BYTES,
  diffState,
  encodeState,
  type StateDiff,
  type StateOp,
} from './state-diff';
export { decodeState } from './state-decode';
export {
  applyStateOps,
  clearState,
  readState,
  readVersion,
  StateStore,
  writeState,
  type ReadResult,
  type WriteResult,
  type WriteStats,
} from './state-codec';
