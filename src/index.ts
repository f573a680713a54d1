export * from './errors';
export * from './backend/types';
export { pack, unpack, unboundVersionstamp, prefixRange, strinc } from './backend/keys';
export { openBackend } from './backend/open-backend';
export { MemoryBackend } from './backend/memory/memory-backend';
