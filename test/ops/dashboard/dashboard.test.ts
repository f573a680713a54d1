import 'reflect-metadata';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { openBackend } from '../../../src/backend/open-backend';
import { Runtime } from '../../../src/facade/runtime';
import { Inspected, populate } from '../cli/populate';
import { spawnCli } from '../cli/run-cli';

jest.setTimeout(600_000);

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Starts `dgen-ts dashboard SPEC --port 0` as a child process; resolves with its URL. */
async function startDashboard(spec: string) {
  const child = spawnCli(['dashboard', spec, '--port', '0', '--interval', '300']);
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`dashboard exited ${code}: ${err}`)));
  });
  return { child, url };
}

let dir: string;
let spec: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dgen-dash-'));
  spec = `sqlite:${join(dir, 'db.sqlite')}`;
  await populate(spec);
});
afterAll(async () => {
  await Runtime.stopAll();
  rmSync(dir, { recursive: true, force: true });
});

test('the dashboard serves JSON endpoints on 127.0.0.1 and refuses writes that are not JSON or from another Host', async () => {
  const { child, url } = await startDashboard(spec);
  try {
    const servers = (await (await fetch(`${url}api/servers`)).json()) as {
      servers: Array<{ tuid: unknown[] }>;
    };
    expect(servers.servers.map((s) => s.tuid)).toEqual([
      ['inspected', 'x'],
      ['inspected', 'y'],
      ['inspected', 'z'],
    ]);
    const q = `tenant=app/a&tuid=${encodeURIComponent('["inspected","x"]')}`;
    const state = (await (await fetch(`${url}api/state?${q}`)).json()) as { state: unknown };
    expect(state.state).toMatchObject({ n: 5, tags: { $set: ['a', 'b'] } });
    const notJson = await fetch(`${url}api/dead-letters/purge`, { method: 'POST', body: 'tenant=app/a' });
    expect(notJson.status).toBe(415);
    const missing = await fetch(`${url}api/state?tenant=app/a&tuid=${encodeURIComponent('["no","body"]')}`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: string }).error).toBe('NOT_FOUND');
    const bad = await fetch(`${url}api/state?tenant=app/a&tuid=nojson`);
    expect(bad.status).toBe(400);
    // a page from another origin that resolved its name to 127.0.0.1 (DNS rebinding) sends its own Host
    const rebound = await new Promise<number>((resolve, reject) =>
      request(`${url}api/servers`, { headers: { host: 'evil.example' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
        .on('error', reject)
        .end(),
    );
    expect(rebound).toBe(403);
  } finally {
    child.kill('SIGINT');
    await new Promise((r) => child.on('exit', r));
  }
});

const browserTest = existsSync(CHROMIUM) ? test : test.skip;
const browserTestName = existsSync(CHROMIUM)
  ? 'in headless Chromium: a server appears, its depth changes, a click requeues a dead letter'
  : `in headless Chromium (SKIPPED: ${CHROMIUM} is not installed; .ci/run installs it)`;

browserTest(browserTestName, async () => {
  const { child, url } = await startDashboard(spec);
  const profile = mkdtempSync(join(tmpdir(), 'dgen-chromium-'));
  let context: BrowserContext | undefined;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS,
    });
    const page = await context.newPage();
    page.on('dialog', (d) => void d.accept());
    await page.goto(url);
    const row = (tuid: string) =>
      page.locator('tr.server', { has: page.locator('td.tuid', { hasText: tuid }) });
    // a server appears, with its depth
    await row('["inspected","y"]')
      .locator('td.depth')
      .filter({ hasText: /^3$/ })
      .waitFor({ timeout: 60_000 });
    expect(await page.locator('tr.server').count()).toBe(3);
    expect(await row('["inspected","y"]').locator('svg polyline').count()).toBe(2);

    // its depth changes when messages are enqueued by another process
    const backend = await openBackend(spec);
    const y = await Runtime.start(Inspected, 'y', {
      tenant: await backend.openTenant(['app', 'a']),
      consume: false,
    });
    await y.castMany([
      { type: 'add', by: 1 },
      { type: 'add', by: 1 },
    ]);
    await row('["inspected","y"]')
      .locator('td.depth')
      .filter({ hasText: /^5$/ })
      .waitFor({ timeout: 60_000 });

    // x: its state and dead letters; requeue one by clicking
    await row('["inspected","x"]').click();
    await page.locator('#state').filter({ hasText: '"$bigint": "12345678901234567890"' }).waitFor();
    const letters = page.locator('tr.letter');
    await letters.nth(1).waitFor();
    expect(await letters.count()).toBe(2);
    const firstId = await letters.nth(0).getAttribute('data-id');
    await letters.nth(0).locator('button.requeue').click();
    await page.locator('#message').filter({ hasText: 'requeued 1' }).waitFor();
    await page.waitForFunction('document.querySelectorAll("tr.letter").length === 1');
    expect(await letters.nth(0).getAttribute('data-id')).not.toBe(firstId);
    await row('["inspected","x"]').locator('td.dead').filter({ hasText: /^1$/ }).waitFor();
    // the letter is back in x's queue (nobody consumes x here)
    const x = await Runtime.start(Inspected, 'x', {
      tenant: await backend.openTenant(['app', 'a']),
      consume: false,
    });
    expect(await x.queueLength()).toBe(1);
    expect((await x.deadLetters()).map((l) => l.id)).not.toContain(firstId);
    await Runtime.stopAll();
    await backend.close();
  } finally {
    await context?.close();
    child.kill('SIGINT');
    await new Promise((r) => child.on('exit', r));
    rmSync(profile, { recursive: true, force: true });
  }
});
