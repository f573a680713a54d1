'use strict';
/* global require, process, console */
/* eslint-disable @typescript-eslint/no-require-imports */
/*
 * PouchDB Server for the couch tests, run as a child process: express-pouchdb (CouchDB's HTTP API
 * over PouchDB) with the in-memory adapter, listening on 127.0.0.1 on a free port. It tells its
 * parent the port over IPC and exits when the parent disconnects, so nothing outlives a test run.
 * Plain JavaScript so the child starts in a fraction of a second (no TypeScript compile).
 */
const express = require('express');
const PouchDB = require('pouchdb-core').plugin(require('pouchdb-adapter-memory'));
const expressPouchDB = require('express-pouchdb');

const MemoryPouch = PouchDB.defaults({ adapter: 'memory' });
const app = express();

// express-pouchdb never cancels a live feed when its client goes away, so every reconnect would
// leave one more feed running in here. The route passes req.query to db.changes() as its options
// object; remember which response each query object belongs to and cancel the feed on close.
const responses = new WeakMap();
app.use((req, res, next) => {
  if (req.query && typeof req.query === 'object') responses.set(req.query, res);
  next();
});
const changes = PouchDB.prototype.changes;
PouchDB.prototype.changes = function (opts, callback) {
  const feed = changes.call(this, opts, callback);
  const res = opts && typeof opts === 'object' ? responses.get(opts) : undefined;
  if (res && opts.live) res.on('close', () => feed.cancel());
  return feed;
};

app.use('/', expressPouchDB(MemoryPouch, { mode: 'minimumForPouchDB' }));

const server = app.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  if (process.send) process.send({ type: 'listening', port });
  else console.log(`listening on http://127.0.0.1:${port}`);
});

const quit = () => process.exit(0);
process.on('disconnect', quit);
process.on('SIGTERM', quit);
