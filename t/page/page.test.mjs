// The API keys page (admin/) in Debian's Chromium, against a private nginx
// with the projkey module (server.mjs): the whole flow an administrator
// walks, with the texts of SPEC.md, and a key created on the page checked
// against the protected location.
//
//   npm run test:page            (make test runs it after prove)
//   PROJKEY_DOCS_IMG=1 npm run test:page   also rewrites docs/img/*.png
//
// Screenshots of every state go to t/out/screenshots/.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

import { ROOT, startServer } from './server.mjs';

const SHOTS = join(ROOT, 't', 'out', 'screenshots');
const DOCS_IMG = join(ROOT, 'docs', 'img');
const CHROMIUM = process.env.PROJKEY_CHROMIUM || '/usr/bin/chromium';
const TZ = 'Europe/Paris';

const TEXT = {
    empty: 'No API key has been created on this project.',
    create: 'Create an API key',
    important: 'Important: copy this key now, it will not be shown again.',
    details: 'API key details',
    updated: 'The API key has been updated.',
};

const SECRET_RE = /^sk-project-[0-9A-Za-z]{48}$/;

// the list's address, whatever its query (?limit=&after=&q=)
const keysUrl = (url) => url.pathname.endsWith('/api/keys');

let srv;
let browser;
let context;
let page;
let shot = 0;

// console messages that are errors, CSP violations, uncaught exceptions
// and dialogs (alert(), confirm()...) the page opened; some steps expect
// a failed request, which Chromium reports on the console
const problems = [];
let expectedConsole = [];
const dialogs = [];

async function screenshot(name) {
    shot += 1;
    const file = join(SHOTS, `${String(shot).padStart(2, '0')}-${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    return file;
}

function docsImage(file, name) {
    if (process.env.PROJKEY_DOCS_IMG) {
        mkdirSync(DOCS_IMG, { recursive: true });
        copyFileSync(file, join(DOCS_IMG, name));
    }
}

function basic() {
    return 'Basic ' + Buffer.from(`${srv.user}:${srv.password}`).toString('base64');
}

// the admin API from node, to check what the page did and to prepare states
async function adminApi(method, path, body) {
    const headers = { Authorization: basic() };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(`${srv.pageUrl}api/${path}`, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, data: text ? JSON.parse(text) : null };
}

// a request to the protected location with a key
async function callApi(secret) {
    const res = await fetch(`${srv.apiUrl}reasonings`, {
        headers: { Authorization: `Bearer ${secret}` },
    });
    return { status: res.status, body: await res.text() };
}

// the Name field of the view shown (each view has one)
function nameField() {
    return page.getByRole('textbox', { name: 'Name', exact: true });
}

function rows() {
    return page.locator('#keys-body tr');
}

function rowOf(name) {
    return rows().filter({ has: page.locator('.key-name', { hasText: name }) });
}

async function waitForList() {
    await page.locator('#loading').waitFor({ state: 'hidden' });
}

async function createOnPage(name) {
    await page.getByRole('button', { name: TEXT.create }).first().click();
    await nameField().fill(name);
    await page.getByRole('button', { name: 'Create', exact: true }).click();
}

// the start of the next second (of the machine's clock, which nginx shares)
function nextSecond() {
    return new Promise((r) => setTimeout(r, 1050 - (Date.now() % 1000)));
}

async function expectAlert(text) {
    await page.locator('[role="alert"]', { hasText: text }).first()
        .waitFor({ state: 'visible' });
}

describe('the API keys page', { concurrency: false }, () => {
    let secret;
    let keyId;

    before(async () => {
        rmSync(SHOTS, { recursive: true, force: true });
        mkdirSync(SHOTS, { recursive: true });
        srv = await startServer();
        browser = await chromium.launch({
            executablePath: CHROMIUM,
            args: ['--headless', '--no-sandbox', '--disable-gpu',
                   '--no-first-run', '--disable-background-networking'],
        });
        context = await browser.newContext({
            httpCredentials: { username: srv.user, password: srv.password },
            viewport: { width: 1100, height: 760 },
            locale: 'en-GB',
            timezoneId: TZ,
        });
        await context.grantPermissions(['clipboard-read', 'clipboard-write'],
                                       { origin: srv.base });
        await context.addInitScript(() => {
            document.addEventListener('securitypolicyviolation', (e) => {
                console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
            });
        });
        page = await context.newPage();
        page.on('console', (m) => {
            if (m.type() !== 'error' && !/Content.Security.Policy|Refused/i.test(m.text())) {
                return;
            }
            if (expectedConsole.some((re) => re.test(m.text()))) return;
            problems.push(`console ${m.type()}: ${m.text()}`);
        });
        page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
        page.on('dialog', async (d) => {
            dialogs.push(`${d.type()}: ${d.message()}`);
            await d.dismiss();
        });
    });

    after(async () => {
        await browser?.close();
        if (srv) {
            const alerts = srv.errorLog().split('\n')
                .filter((l) => /\[(alert|emerg|crit)\]/.test(l));
            await srv.stop();
            assert.deepEqual(alerts, [], 'no alert in nginx error.log');
        }
    });

    it('is served with the strict CSP and no inline code', async () => {
        const res = await page.goto(srv.pageUrl);
        assert.equal(res.status(), 200);
        assert.match(res.headers()['content-security-policy'], /script-src 'self'; style-src 'self'/);
        assert.equal(await page.locator('script:not([src])').count(), 0);
        assert.equal(await page.locator('style, [style]').count(), 0);
        const handlers = await page.evaluate(() => [...document.querySelectorAll('*')]
            .flatMap((e) => [...e.attributes].map((a) => a.name))
            .filter((n) => n.startsWith('on')));
        assert.deepEqual(handlers, []);
        assert.equal(await page.title(), 'API keys');
    });

    it('shows the empty state', async () => {
        await waitForList();
        await page.getByRole('heading', { level: 1, name: 'API keys' }).waitFor();
        await page.getByText(TEXT.empty, { exact: true }).waitFor();
        assert.equal(await page.getByRole('button', { name: TEXT.create }).count(), 1);
        assert.equal(await page.locator('#keys').isVisible(), false);
        await screenshot('empty');
    });

    it('refuses a blank name, as the API does', async () => {
        // by keyboard: the button, then the Name field has the focus
        await page.getByRole('button', { name: TEXT.create }).focus();
        await page.keyboard.press('Enter');
        await page.getByRole('heading', { level: 1, name: TEXT.create }).waitFor();
        assert.equal(await page.evaluate(() => document.activeElement.id), 'create-name');
        await page.keyboard.type('   ');
        await page.keyboard.press('Enter');
        await expectAlert('The name must not be empty.');
        assert.equal(await nameField().getAttribute('aria-invalid'), 'true');
        await screenshot('create-blank-name');
        assert.equal((await adminApi('GET', 'keys')).data.keys.length, 0);
    });

    it('refuses a name of 101 characters', async () => {
        await nameField().fill('x'.repeat(101));
        await page.getByRole('button', { name: 'Create', exact: true }).click();
        await expectAlert('The name must be at most 100 characters.');
        await screenshot('create-long-name');
        assert.equal((await adminApi('GET', 'keys')).data.keys.length, 0);
    });

    it('creates a key and shows its secret once', async () => {
        await nameField().fill('  CI pipeline  ');
        await page.getByRole('button', { name: 'Create', exact: true }).click();
        await page.getByText(TEXT.important, { exact: true }).waitFor();
        secret = (await page.locator('#secret').textContent()).trim();
        assert.match(secret, SECRET_RE);
    });

    it('copies the secret', async () => {
        await page.getByRole('button', { name: 'Copy', exact: true }).click();
        await page.getByRole('status').filter({ hasText: 'Copied' }).waitFor();
        const copied = await page.evaluate(() => navigator.clipboard.readText());
        assert.equal(copied, secret);
        const file = await screenshot('key-created');
        docsImage(file, 'key-created.png');
    });

    it('lists the new key', async () => {
        const keys = (await adminApi('GET', 'keys')).data.keys;
        assert.equal(keys.length, 1);
        keyId = keys[0].id;
        assert.equal(keys[0].name, 'CI pipeline');

        const row = rowOf('CI pipeline');
        await row.waitFor();
        assert.equal(await rows().count(), 1);
        await row.getByText(`sk-project-...${secret.slice(-4)}`, { exact: true }).waitFor();
        assert.equal((await row.locator('.cell-status').textContent()).trim(), 'Active');
        assert.equal((await row.locator('.cell-by').textContent()).trim(), 'admin');
        assert.equal((await row.locator('.cell-used').textContent()).trim(), 'Never');

        // Created on: in the viewer's local time (Paris here), not UTC
        const created = new Date(keys[0].created_at);
        const local = new Intl.DateTimeFormat('en-GB', {
            hour: '2-digit', minute: '2-digit', hour12: false, timeZone: TZ,
        }).format(created);
        const text = (await row.locator('.cell-created').textContent()).trim();
        assert.ok(text.includes(local), `"${text}" shows ${local}, the time in ${TZ}`);
        assert.equal(await row.locator('.cell-created time').getAttribute('datetime'),
                     keys[0].created_at);
        assert.equal(await row.getByRole('button', { name: 'Detail' }).count(), 1);
    });

    it('does not show the secret again after a reload', async () => {
        await page.reload();
        await waitForList();
        await rowOf('CI pipeline').waitFor();
        assert.equal(await page.getByText(TEXT.important).isVisible(), false);
        assert.equal(await page.getByText(secret).count(), 0);
        const html = await page.content();
        assert.ok(!html.includes(secret), 'the secret is not in the page');
        assert.ok(!html.includes(secret.slice(11, 30)), 'nor a part of it');
        const stored = await page.evaluate(() => JSON.stringify([
            { ...localStorage }, { ...sessionStorage }, location.href, document.cookie,
        ]));
        assert.ok(!stored.includes(secret.slice(11, 30)), 'nor in storage or the URL');
        await screenshot('list-after-reload');
    });

    it('the key works on the protected location', async () => {
        const r = await callApi(secret);
        assert.equal(r.status, 200);
        assert.equal(r.body, 'ok');
    });

    it('shows when the key was last used', async () => {
        // last use times reach the database on the zone's flush (1s here)
        const deadline = Date.now() + 10000;
        let text = 'Never';
        while (Date.now() < deadline) {
            await page.reload();
            await waitForList();
            text = (await rowOf('CI pipeline').locator('.cell-used').textContent()).trim();
            if (text !== 'Never') break;
            await new Promise((r) => setTimeout(r, 300));
        }
        assert.notEqual(text, 'Never');
        assert.equal(await rowOf('CI pipeline').locator('.cell-used time').count(), 1);
    });

    it('opens the details of a key', async () => {
        await rowOf('CI pipeline').getByRole('button', { name: 'Detail' }).click();
        await page.getByRole('heading', { level: 1, name: TEXT.details }).waitFor();
        assert.equal(await nameField().inputValue(), 'CI pipeline');
        assert.equal(await page.getByRole('combobox', { name: 'Status' }).inputValue(), 'active');
        const options = await page.getByRole('combobox', { name: 'Status' }).locator('option').allTextContents();
        assert.deepEqual(options, ['Active', 'Disabled']);
        assert.equal(await page.locator('#detail-preview').textContent(),
                     `sk-project-...${secret.slice(-4)}`);
        await page.getByRole('button', { name: 'Delete', exact: true }).waitFor();
        await screenshot('details');
    });

    it('renames the key', async () => {
        await nameField().fill('Deploy bot');
        await page.getByRole('button', { name: 'Save' }).click();
        await page.getByRole('status').filter({ hasText: TEXT.updated }).waitFor();
        const k = (await adminApi('GET', `keys/${keyId}`)).data.key;
        assert.equal(k.name, 'Deploy bot');
        assert.equal(k.status, 'active');
        await screenshot('renamed');
    });

    it('disables the key: it is refused', async () => {
        await page.getByRole('combobox', { name: 'Status' }).selectOption({ label: 'Disabled' });
        await page.getByRole('button', { name: 'Save' }).click();
        await page.getByRole('status').filter({ hasText: TEXT.updated }).waitFor();
        assert.equal((await adminApi('GET', `keys/${keyId}`)).data.key.status, 'disabled');
        assert.equal((await callApi(secret)).status, 401);
        await screenshot('disabled');
    });

    it('shows it disabled in the list', async () => {
        await page.getByRole('button', { name: '← API keys' }).click();
        await waitForList();
        const row = rowOf('Deploy bot');
        await row.locator('.cell-status', { hasText: 'Disabled' }).waitFor();
        await screenshot('list-disabled');
    });

    it('makes the key active again: it works', async () => {
        await rowOf('Deploy bot').getByRole('button', { name: 'Detail' }).click();
        await page.getByRole('heading', { level: 1, name: TEXT.details }).waitFor();
        await page.getByRole('combobox', { name: 'Status' }).selectOption({ label: 'Active' });
        await page.getByRole('button', { name: 'Save' }).click();
        await page.getByRole('status').filter({ hasText: TEXT.updated }).waitFor();
        assert.equal((await callApi(secret)).status, 200);
    });

    it('validates a new name on the detail view', async () => {
        await nameField().fill('');
        await page.getByRole('button', { name: 'Save' }).click();
        await expectAlert('The name must not be empty.');
        assert.equal((await adminApi('GET', `keys/${keyId}`)).data.key.name, 'Deploy bot');
        await nameField().fill('Deploy bot');
    });

    it('asks before deleting; Cancel keeps the key', async () => {
        await page.getByRole('button', { name: 'Delete', exact: true }).click();
        const dialog = page.getByRole('dialog');
        await dialog.waitFor();
        await dialog.getByText('Deploy bot').waitFor();
        assert.equal(dialogs.length, 0, 'an in-page dialog, not window.confirm');
        await screenshot('delete-confirm');
        await dialog.getByRole('button', { name: 'Cancel' }).click();
        await dialog.waitFor({ state: 'hidden' });
        assert.equal((await adminApi('GET', `keys/${keyId}`)).status, 200);
        assert.equal((await callApi(secret)).status, 200);

        // Escape cancels as well
        await page.getByRole('button', { name: 'Delete', exact: true }).click();
        await dialog.waitFor();
        await page.keyboard.press('Escape');
        await dialog.waitFor({ state: 'hidden' });
        assert.equal((await adminApi('GET', `keys/${keyId}`)).status, 200);
    });

    it('deletes the key after confirmation', async () => {
        await page.getByRole('button', { name: 'Delete', exact: true }).click();
        const dialog = page.getByRole('dialog');
        await dialog.getByRole('button', { name: 'Delete' }).click();
        await page.getByRole('heading', { level: 1, name: 'API keys' }).waitFor();
        await page.getByText(TEXT.empty, { exact: true }).waitFor();
        assert.equal((await adminApi('GET', `keys/${keyId}`)).status, 404);
        assert.equal((await callApi(secret)).status, 401);
        await screenshot('deleted-empty');
    });

    it('shows a name as text, never as markup', async () => {
        const evil = '<img src=x onerror=alert(1)>';
        await createOnPage(evil);
        await page.getByText(TEXT.important, { exact: true }).waitFor();
        await page.locator('#created-name', { hasText: evil }).waitFor();
        await rowOf(evil).waitFor();
        assert.equal(await page.locator('img').count(), 0);
        await page.getByRole('button', { name: 'Done' }).click();
        assert.equal(await page.getByText(TEXT.important).isVisible(), false);
        await rowOf(evil).getByRole('button', { name: 'Detail' }).click();
        await page.getByRole('heading', { level: 1, name: TEXT.details }).waitFor();
        assert.equal(await nameField().inputValue(), evil);
        await page.getByRole('button', { name: 'Delete', exact: true }).click();
        await page.getByRole('dialog').getByText(evil).waitFor();
        assert.equal(await page.locator('img').count(), 0);
        await screenshot('markup-name');
        await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
        await page.getByText(TEXT.empty, { exact: true }).waitFor();
        assert.deepEqual(dialogs, []);
    });

    it('shows an API error: the key is gone', async () => {
        const created = await adminApi('POST', 'keys', { name: 'Short lived' });
        assert.equal(created.status, 201);
        await page.reload();
        await waitForList();
        const fresh = page.waitForResponse((r) => r.url().endsWith(created.data.key.id));
        await rowOf('Short lived').getByRole('button', { name: 'Detail' }).click();
        await page.getByRole('heading', { level: 1, name: TEXT.details }).waitFor();
        await fresh;

        // deleted meanwhile, elsewhere
        assert.equal((await adminApi('DELETE', `keys/${created.data.key.id}`)).status, 204);
        expectedConsole = [/status of 404/];
        await nameField().fill('Renamed');
        await page.getByRole('button', { name: 'Save' }).click();
        await expectAlert('No such API key in this project.');
        await screenshot('api-error');
        expectedConsole = [];
        await page.getByRole('button', { name: '← API keys' }).click();
        await page.getByText(TEXT.empty, { exact: true }).waitFor();
    });

    it('shows a network failure, and recovers', async () => {
        expectedConsole = [/net::ERR_FAILED/];
        await page.route(keysUrl, (route) => route.abort(), { times: 1 });
        await page.reload();
        await expectAlert('The server could not be reached.');
        await screenshot('network-error');
        expectedConsole = [];
        await page.getByRole('button', { name: 'Try again' }).click();
        await page.getByText(TEXT.empty, { exact: true }).waitFor();
        assert.equal(await page.locator('#page-error').isVisible(), false);
    });

    it('shows a network failure when creating', async () => {
        expectedConsole = [/net::ERR_FAILED/];
        await page.route(keysUrl, (route) => (route.request().method() === 'POST'
            ? route.abort() : route.fallback()), { times: 1 });
        await createOnPage('Offline');
        await expectAlert('The server could not be reached.');
        expectedConsole = [];
        await page.unrouteAll();
        assert.equal((await adminApi('GET', 'keys')).data.keys.length, 0);
        await page.getByRole('button', { name: 'Cancel' }).click();
        await page.getByText(TEXT.empty, { exact: true }).waitFor();
    });

    it('lists several keys, newest first', async () => {
        // times are to the second, and keys of one second come in the
        // order of their (random) ids: one second each
        for (const name of ['Nightly reports', 'Staging backend']) {
            await nextSecond();
            assert.equal((await adminApi('POST', 'keys', { name })).status, 201);
        }
        const staging = (await adminApi('GET', 'keys')).data.keys
            .find((k) => k.name === 'Staging backend');
        await adminApi('PATCH', `keys/${staging.id}`, { status: 'disabled' });

        await page.reload();
        await waitForList();
        await nextSecond();
        await createOnPage('CI pipeline');
        await page.getByText(TEXT.important, { exact: true }).waitFor();
        await page.getByRole('button', { name: 'Done' }).click();
        await page.waitForLoadState('networkidle');
        const names = await page.locator('#keys-body .key-name').allTextContents();
        assert.deepEqual(names, ['CI pipeline', 'Staging backend', 'Nightly reports']);
        const file = await screenshot('keys-list');
        docsImage(file, 'keys-list.png');
    });

    it('is readable 375 px wide', async () => {
        await page.setViewportSize({ width: 375, height: 740 });
        await page.reload();
        await waitForList();
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
        assert.ok(overflow <= 375, `no horizontal scrolling (${overflow} px)`);
        assert.equal(await page.locator('#keys thead').isVisible(), false,
                     'a stacked list, no table head');
        await rowOf('CI pipeline').getByRole('button', { name: 'Detail' }).waitFor();
        await screenshot('narrow-list');

        await createOnPage('Phone');
        await page.getByText(TEXT.important, { exact: true }).waitFor();
        const w = await page.evaluate(() => document.documentElement.scrollWidth);
        assert.ok(w <= 375, `no horizontal scrolling with the secret (${w} px)`);
        await screenshot('narrow-created');

        await page.getByRole('button', { name: 'Done' }).click();
        await rowOf('Phone').getByRole('button', { name: 'Detail' }).click();
        await page.getByRole('heading', { level: 1, name: TEXT.details }).waitFor();
        const w2 = await page.evaluate(() => document.documentElement.scrollWidth);
        assert.ok(w2 <= 375, `no horizontal scrolling on the details (${w2} px)`);
        await screenshot('narrow-details');
    });

    it('had no console error, no CSP violation, no dialog', () => {
        assert.deepEqual(problems, []);
        assert.deepEqual(dialogs, []);
    });
});
