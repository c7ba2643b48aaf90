// The API keys page, version 2 (SPEC "The API keys page"): expiry when
// creating and in the details, times with their time zone, each key at its
// own address (#/keys/ID: reload, Back, an unknown id), rolling a key's
// secret with each choice of the previous secret's end (checked with real
// requests through nginx), and "Applied on N of M gateways" after a change.
// Chromium against a private nginx with the module (server.mjs).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { startServer } from './server.mjs';
import { TEXT, SECRET_RE, alerts, clients, localInput, localTime, openBrowser,
         sleep, zoneName } from './browser.mjs';

const MINUTE = 60 * 1000;
const HOUR = 60 * MINUTE;

let srv;
let b;
let page;
let adminApi;
let callApi;

function nameField() {
    return page.getByRole('textbox', { name: 'Name', exact: true });
}

function expiresField() {
    return page.getByRole('textbox', { name: 'Expires (optional)' });
}

function rowOf(name) {
    return page.locator('#keys-body tr')
        .filter({ has: page.locator('.key-name', { hasText: name }) });
}

async function waitForList() {
    await page.getByRole('heading', { level: 1, name: 'API keys' }).waitFor();
    await page.locator('#loading').waitFor({ state: 'hidden' });
}

async function focusedId() {
    return page.evaluate(() => document.activeElement && document.activeElement.id);
}

// the next whole minute at least `ahead` ms from now: what a datetime-local
// field holds
function minuteAhead(ahead) {
    return new Date(Math.ceil((Date.now() + ahead) / MINUTE) * MINUTE);
}

function iso(date) {
    return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

// "27 Nov 2026, 06:35 CET"
function shown(isoTime) {
    return `${localTime(isoTime)} ${zoneName(isoTime)}`;
}

async function createKey(name, extra = {}) {
    const r = await adminApi('POST', 'keys', { name, ...extra });
    assert.equal(r.status, 201, JSON.stringify(r.data));
    return r.data;
}

async function openDetailOf(name) {
    await rowOf(name).getByRole('button', { name: 'Detail' }).click();
    await page.getByRole('heading', { level: 1, name: TEXT.details }).waitFor();
    await page.waitForLoadState('networkidle');
}

async function gotoDetail(id) {
    await page.goto(`${srv.pageUrl}#/keys/${id}`);
    await page.getByRole('heading', { level: 1, name: TEXT.details }).waitFor();
    await page.waitForLoadState('networkidle');
}

// the count under the Save button (where = 'detail') or Roll key ('roll')
async function waitForApplied(n, m, where = 'detail') {
    await page.locator(`#${where}-applied`)
        .filter({ hasText: new RegExp(`^Applied on ${n} of ${m} gateways$`) })
        .waitFor({ timeout: 10000 });
}

// a request with the secret until it gets `status` (a change made
// elsewhere reaches the zone within its sync interval)
async function expectStatus(secret, status, ms = 3000) {
    const until = Date.now() + ms;
    let r;
    for (;;) {
        r = await callApi(secret);
        if (r.status === status || Date.now() > until) break;
        await sleep(100);
    }
    assert.equal(r.status, status, r.body);
    return r;
}

async function roll(choice) {
    await page.getByLabel('The previous secret stops working').selectOption({ label: choice });
    const answer = page.waitForResponse((r) => r.url().endsWith('/roll'));
    await page.getByRole('button', { name: 'Roll key' }).click();
    const res = await answer;
    assert.equal(res.status(), 201);
    await page.locator('#view-detail').getByText(TEXT.important, { exact: true }).waitFor();
    const secret = (await page.locator('#secret').textContent()).trim();
    assert.match(secret, SECRET_RE);
    assert.equal(secret, (await res.json()).secret);
    assert.equal(await focusedId(), 'created-title', 'the focus is on the new secret');
    return secret;
}

describe('the API keys page, version 2', { concurrency: false }, () => {
    before(async () => {
        srv = await startServer();
        b = await openBrowser(srv);
        page = b.page;
        ({ adminApi, callApi } = clients(srv));
    });

    after(async () => {
        await b?.close();
        if (srv) {
            const found = alerts(srv);
            await srv.stop();
            assert.deepEqual(found, [], 'no alert in nginx error.log');
        }
    });

    describe('expiry', () => {
        let expires;
        let id;

        it('creates a key with an expiry', async () => {
            await page.goto(srv.pageUrl);
            await waitForList();
            await page.getByText(TEXT.empty, { exact: true }).waitFor();
            await page.getByRole('button', { name: TEXT.create }).click();
            await page.getByRole('heading', { level: 1, name: TEXT.create }).waitFor();
            assert.match(page.url(), /#\/new$/);

            // the hint says which time zone the field is in
            await page.getByText('In your time zone, Europe/Paris.').first().waitFor();

            expires = minuteAhead(3 * 24 * HOUR);
            await nameField().fill('Expiring');
            await expiresField().fill(localInput(expires));
            await page.getByRole('button', { name: 'Create', exact: true }).click();
            await page.getByText(TEXT.important, { exact: true }).waitFor();
            assert.match(page.url(), /#\/$/, 'the list\'s address');

            const keys = (await adminApi('GET', 'keys')).data.keys;
            assert.equal(keys.length, 1);
            id = keys[0].id;
            assert.equal(keys[0].expires_at, iso(expires),
                         'the local time of the field, in UTC');
            await b.screenshot('v2', 'created-expiring');
            await page.getByRole('button', { name: 'Done' }).click();
        });

        it('shows times with their time zone', async () => {
            const key = (await adminApi('GET', `keys/${id}`)).data.key;
            const row = rowOf('Expiring');
            assert.equal((await row.locator('.cell-expires').textContent()).trim(),
                         shown(key.expires_at));
            assert.match((await row.locator('.cell-expires').textContent()).trim(),
                         /^\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2} CES?T$/);
            assert.equal((await row.locator('.cell-created').textContent()).trim(),
                         shown(key.created_at));
            assert.equal(await row.locator('.cell-expires time').getAttribute('datetime'),
                         key.expires_at);

            await openDetailOf('Expiring');
            assert.equal((await page.locator('#detail-expires-at').textContent()).trim(),
                         shown(key.expires_at));
            assert.equal(await expiresField().inputValue(), localInput(expires));
            await b.screenshot('v2', 'details-expiring');
        });

        it('changes the expiry in the details', async () => {
            const later = minuteAhead(10 * 24 * HOUR);
            await expiresField().fill(localInput(later));
            await page.getByRole('button', { name: 'Save' }).click();
            await page.getByRole('status').filter({ hasText: TEXT.updated }).waitFor();
            assert.equal((await adminApi('GET', `keys/${id}`)).data.key.expires_at, iso(later));
            assert.equal((await page.locator('#detail-expires-at').textContent()).trim(),
                         shown(iso(later)));
        });

        it('removes the expiry', async () => {
            await page.getByRole('button', { name: 'No expiry' }).click();
            assert.equal(await expiresField().inputValue(), '');
            await page.getByRole('button', { name: 'Save' }).click();
            await page.getByRole('status').filter({ hasText: TEXT.updated }).waitFor();
            assert.equal((await adminApi('GET', `keys/${id}`)).data.key.expires_at, null);
            assert.equal((await page.locator('#detail-expires-at').textContent()).trim(), 'Never');
            await page.getByRole('button', { name: '← API keys' }).click();
            await waitForList();
            await rowOf('Expiring').locator('.cell-expires', { hasText: 'Never' }).waitFor();
        });

        it('refuses an expiry in the past, as the API does', async () => {
            const before = (await adminApi('GET', 'keys')).data.keys.length;
            await page.goto(srv.pageUrl);
            await waitForList();
            await page.getByRole('button', { name: TEXT.create }).first().click();
            await page.getByRole('heading', { level: 1, name: TEXT.create }).waitFor();
            assert.equal(await focusedId(), 'create-name');
            await nameField().fill('Too late');
            await expiresField().fill(localInput(new Date(Date.now() - HOUR)));
            await page.getByRole('button', { name: 'Create', exact: true }).click();
            await page.locator('#create-expires-error',
                               { hasText: 'The expiry must be in the future.' }).waitFor();
            assert.equal(await focusedId(), 'create-expires');
            assert.equal(await expiresField().getAttribute('aria-invalid'), 'true');
            assert.equal((await adminApi('GET', 'keys')).data.keys.length, before);
            await page.getByRole('button', { name: 'Cancel' }).click();
            await waitForList();
        });

        it('shows an expired key as Expired; it is refused', async () => {
            const at = new Date(Math.ceil((Date.now() + 3000) / 1000) * 1000);
            const made = await createKey('Short expiry', { expires_at: iso(at) });
            await expectStatus(made.secret, 200);
            await sleep(at.getTime() - Date.now() + 1200);

            const r = await expectStatus(made.secret, 401);
            assert.match(r.body, /api_key_expired/);
            assert.equal((await adminApi('GET', `keys/${made.key.id}`)).data.key.status,
                         'expired');

            await page.reload();
            await waitForList();
            await rowOf('Short expiry').locator('.cell-status', { hasText: 'Expired' }).waitFor();
            await openDetailOf('Short expiry');
            assert.equal((await page.locator('#detail-status-now').textContent()).trim(),
                         'Expired');
            await page.locator('#detail-expired-note', { hasText: 'This key expired on' })
                .waitFor();
            await b.screenshot('v2', 'expired');

            // a later expiry makes it usable again
            await expiresField().fill(localInput(minuteAhead(HOUR)));
            await page.getByRole('button', { name: 'Save' }).click();
            await page.getByRole('status').filter({ hasText: TEXT.updated }).waitFor();
            assert.equal((await page.locator('#detail-status-now').textContent()).trim(),
                         'Active');
            await expectStatus(made.secret, 200);
        });
    });

    describe('addresses', () => {
        let key;

        it('shows a key\'s details at #/keys/ID, with the focus on them', async () => {
            key = (await createKey('Addressed')).key;
            await page.goto(srv.pageUrl);
            await waitForList();
            await openDetailOf('Addressed');
            assert.equal(new URL(page.url()).hash, `#/keys/${key.id}`);
            assert.equal(await focusedId(), 'detail-title');
            assert.equal(await nameField().inputValue(), 'Addressed');
        });

        it('shows them again after a reload', async () => {
            await page.reload();
            await page.getByRole('heading', { level: 1, name: TEXT.details }).waitFor();
            await page.waitForLoadState('networkidle');
            assert.equal(await nameField().inputValue(), 'Addressed');
            assert.equal(await page.locator('#detail-preview').textContent(), key.preview);
        });

        it('goes back to the list with Back, and forward again', async () => {
            await page.goBack();
            await waitForList();
            assert.equal(await focusedId(), 'list-title');
            await rowOf('Addressed').waitFor();
            await page.goForward();
            await page.getByRole('heading', { level: 1, name: TEXT.details }).waitFor();
            assert.equal(await nameField().inputValue(), 'Addressed');
            assert.equal(await focusedId(), 'detail-title');
        });

        it('"← API keys" goes back to the list', async () => {
            await page.getByRole('button', { name: '← API keys' }).click();
            await waitForList();
            assert.ok(['', '#/'].includes(new URL(page.url()).hash), page.url());
        });

        it('says so when the address is of no key', async () => {
            b.expectConsole([/status of 404/]);
            await page.goto(`${srv.pageUrl}#/keys/AAAAAAAAAAAA`);
            await page.getByRole('heading', { level: 1, name: 'API key not found' }).waitFor();
            await page.getByText('No such API key in this project.', { exact: true }).waitFor();
            assert.equal(await focusedId(), 'notfound-title');
            await b.screenshot('v2', 'not-found');
            b.expectConsole([]);

            // not an id at all: no request is sent for it
            const asked = [];
            page.on('request', (r) => asked.push(r.url()));
            await page.goto(`${srv.pageUrl}#/keys/..%2F..%2Fetc`);
            await page.getByRole('heading', { level: 1, name: 'API key not found' }).waitFor();
            await page.getByText('No such API key in this project.', { exact: true }).waitFor();
            assert.deepEqual(asked.filter((u) => u.includes('etc')), []);
            page.removeAllListeners('request');

            await page.getByRole('button', { name: '← API keys' }).click();
            await waitForList();
        });

        it('a deleted key\'s address is replaced by the list\'s', async () => {
            await openDetailOf('Addressed');
            await page.getByRole('button', { name: 'Delete', exact: true }).click();
            await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
            await page.getByText('The API key “Addressed” has been deleted.').waitFor();
            assert.equal(new URL(page.url()).hash, '#/');
        });
    });

    describe('gateways', () => {
        it('shows how many gateways have a status change', async () => {
            const made = await createKey('Gateway check');
            await gotoDetail(made.key.id);
            await page.getByRole('combobox', { name: 'Status' }).selectOption({ label: 'Disabled' });
            const answer = page.waitForResponse((r) => r.request().method() === 'PATCH');
            await page.getByRole('button', { name: 'Save' }).click();
            const body = await (await answer).json();
            assert.equal(typeof body.revision, 'number', 'the write says its revision');
            await page.getByRole('status').filter({ hasText: TEXT.updated }).waitFor();
            await waitForApplied(1, 1);
            assert.equal((await callApi(made.secret)).status, 401);
            await b.screenshot('v2', 'applied');

            // a rename is not a change of what the gateways enforce
            await nameField().fill('Gateway check 2');
            await page.getByRole('button', { name: 'Save' }).click();
            await page.getByRole('status').filter({ hasText: TEXT.updated }).waitFor();
            assert.equal(await page.locator('#detail-applied').textContent(), '');
        });
    });

    describe('rolling a key', () => {
        it('rolls with the previous secret ending now', async () => {
            const made = await createKey('Roll now');
            await gotoDetail(made.key.id);
            await expectStatus(made.secret, 200);

            const secret = await roll('Now');
            assert.notEqual(secret, made.secret);
            await page.getByText('The previous secret no longer works.').waitFor();
            await b.screenshot('v2', 'rolled-now');

            // expired at once, then purged (within the zone's flush= interval,
            // 1s here): unknown
            const old = await expectStatus(made.secret, 401);
            assert.match(old.body, /api_key_expired|invalid_api_key/);
            await expectStatus(secret, 200);

            const key = (await adminApi('GET', `keys/${made.key.id}`)).data.key;
            assert.equal(key.id, made.key.id, 'the same key');
            assert.equal(key.name, 'Roll now');
            assert.equal(key.preview, `sk-project-...${secret.slice(-4)}`);
            assert.ok([made.key.preview, null].includes(key.previous_preview));
            assert.equal(await page.locator('#detail-preview').textContent(), key.preview);
            await page.locator('#detail-previous-text',
                               { hasText: `${made.key.preview}, stopped working on` }).waitFor();
            await waitForApplied(1, 1, 'roll');

            // the same copy button as for a created key
            await page.locator('#view-detail').getByRole('button', { name: 'Copy' }).click();
            await page.getByRole('status').filter({ hasText: 'Copied' }).waitFor();
            assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
            await page.evaluate(() => navigator.clipboard.writeText(''));

            await page.getByRole('button', { name: 'Done' }).click();
            assert.equal(await page.getByText(secret).count(), 0);
            assert.equal(await focusedId(), 'roll-submit');
        });

        for (const [choice, grace] of [['In 1 hour', HOUR], ['In 24 hours', 24 * HOUR],
                                       ['In 7 days', 7 * 24 * HOUR]]) {
            it(`rolls with the previous secret ending ${choice.toLowerCase()}`, async () => {
                const made = await createKey(`Roll ${choice}`);
                await gotoDetail(made.key.id);

                const t0 = Date.now();
                const secret = await roll(choice);
                const t1 = Date.now();

                // both work: the previous one until its end
                await expectStatus(secret, 200);
                await expectStatus(made.secret, 200);

                const key = (await adminApi('GET', `keys/${made.key.id}`)).data.key;
                const end = new Date(key.previous_expires_at).getTime();
                assert.ok(end >= Math.floor((t0 + grace) / 1000) * 1000 - 1000
                          && end <= t1 + grace + 1000,
                          `the previous secret ends ${choice.toLowerCase()} (${key.previous_expires_at})`);
                await page.getByText(`The previous secret works until ${shown(key.previous_expires_at)}.`)
                    .waitFor();
                await page.locator('#detail-previous-text', {
                    hasText: `${made.key.preview}, works until ${shown(key.previous_expires_at)}`,
                }).waitFor();
                await waitForApplied(1, 1, 'roll');
            });
        }

        it('forgets the new secret when the details are left', async () => {
            await createKey('Roll and leave');
            await page.goto(srv.pageUrl);
            await waitForList();
            await openDetailOf('Roll and leave');
            const secret = await roll('In 1 hour');
            await page.goBack();
            await waitForList();
            assert.equal(await page.getByText(TEXT.important).isVisible(), false);
            assert.ok(!(await page.content()).includes(secret.slice(11, 30)));
            await page.goForward();
            await page.getByRole('heading', { level: 1, name: TEXT.details }).waitFor();
            assert.ok(!(await page.content()).includes(secret.slice(11, 30)),
                      'not shown again');
        });

        it('shows an error of the API as its message', async () => {
            const made = await createKey('Roll gone');
            await gotoDetail(made.key.id);
            assert.equal((await adminApi('DELETE', `keys/${made.key.id}`)).status, 204);
            b.expectConsole([/status of 404/]);
            await page.getByRole('button', { name: 'Roll key' }).click();
            await page.locator('#roll-error', { hasText: 'No such API key in this project.' })
                .waitFor();
            assert.doesNotMatch(await page.locator('#roll-error').textContent(), /[{}]/);
            b.expectConsole([]);
        });
    });

    it('had no console error, no CSP violation, no dialog', () => {
        assert.deepEqual(b.problems, []);
    });
});
