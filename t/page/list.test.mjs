// The API keys page's list, paged and searchable (SPEC v2): 253 keys made
// with the CLI before nginx starts, walked with Next and Previous (the
// page keeps the cursors it was given), narrowed by a search sent once
// the typing stops, and the page kept across a visit to a key's details.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';

import { projkey, startServer } from './server.mjs';
import { TEXT, alerts, clients, openBrowser } from './browser.mjs';

const PAGE_SIZE = 50;
const BULK = 250;
const NAMED = ['Billing worker', 'Billing cron', 'Search indexer'];
const TOTAL = BULK + NAMED.length;

let srv;
let b;
let page;
let adminApi;
let requests = [];

function rows() {
    return page.locator('#keys-body tr');
}

async function ids() {
    return page.locator('#keys-body .key-name').evaluateAll(
        (els) => els.map((e) => e.id.replace(/^key-name-/, '')));
}

async function names() {
    return page.locator('#keys-body .key-name').allTextContents();
}

// the list's requests (GET api/keys?...) since the last call
function listRequests() {
    const r = requests;
    requests = [];
    return r.map((u) => new URL(u)).filter((u) => u.pathname.endsWith('/api/keys'));
}

async function waitForRange(text) {
    await page.locator('#page-range', { hasText: new RegExp(`^${text}$`) }).waitFor();
    await page.waitForLoadState('networkidle');
}

async function search(text) {
    const box = page.getByRole('searchbox', { name: 'Search by name' });
    await box.fill('');
    await box.pressSequentially(text, { delay: 40 });
}

describe('the list of API keys, paged and searchable', { concurrency: false }, () => {
    const pages = [];       // the ids of each page, going forward

    before(async () => {
        srv = await startServer({
            seed: async (db) => {
                projkey(db, 'create', 'bulk', '--count', String(BULK),
                        '--secrets', join(srv0dir(db), 'bulk-secrets.txt'));
                for (const name of NAMED) projkey(db, 'create', name);
            },
        });
        b = await openBrowser(srv);
        page = b.page;
        ({ adminApi } = clients(srv));
        page.on('request', (r) => requests.push(r.url()));
    });

    after(async () => {
        await b?.close();
        if (srv) {
            const found = alerts(srv);
            await srv.stop();
            assert.deepEqual(found, [], 'no alert in nginx error.log');
        }
    });

    it('shows the first page only', async () => {
        await page.goto(srv.pageUrl);
        await waitForRange(`API keys 1–${PAGE_SIZE}`);
        assert.equal(await rows().count(), PAGE_SIZE);
        assert.equal(await page.getByRole('button', { name: 'Previous' }).isDisabled(), true);
        assert.equal(await page.getByRole('button', { name: 'Next' }).isDisabled(), false);
        assert.equal(await page.getByRole('navigation', { name: 'Pages of API keys' }).count(), 1);

        const asked = listRequests();
        assert.equal(asked.length, 1);
        assert.equal(asked[0].searchParams.get('limit'), String(PAGE_SIZE));
        assert.equal(asked[0].searchParams.get('after'), null);
        pages.push(await ids());
        const api = (await adminApi('GET', `keys?limit=${PAGE_SIZE}`)).data.keys;
        assert.deepEqual(pages[0], api.map((k) => k.id), 'the API\'s first page');
        await b.screenshot('list', 'first-page');
    });

    it('pages through every key with Next', async () => {
        const next = page.getByRole('button', { name: 'Next' });
        for (let n = 1; n * PAGE_SIZE < TOTAL; n++) {
            await next.click();
            const last = Math.min((n + 1) * PAGE_SIZE, TOTAL);
            await waitForRange(`API keys ${n * PAGE_SIZE + 1}–${last}`);
            const asked = listRequests();
            assert.equal(asked.length, 1);
            assert.equal(asked[0].searchParams.get('limit'), String(PAGE_SIZE));
            assert.ok(asked[0].searchParams.get('after'), 'with the cursor');
            pages.push(await ids());
        }
        assert.equal(await next.isDisabled(), true, 'no Next on the last page');
        assert.equal(await page.evaluate(() => document.activeElement.id), 'page-prev',
                     'the focus leaves the disabled button for Previous');
        await b.screenshot('list', 'last-page');

        const seen = pages.flat();
        assert.equal(new Set(seen).size, TOTAL, 'every key once');
        const all = (await adminApi('GET', 'keys?limit=1000')).data.keys.map((k) => k.id);
        assert.deepEqual(seen, all, 'in the order of the API');
    });

    it('goes back with Previous, page by page', async () => {
        const prev = page.getByRole('button', { name: 'Previous' });
        for (let n = pages.length - 2; n >= 0; n--) {
            await prev.click();
            await waitForRange(`API keys ${n * PAGE_SIZE + 1}–${(n + 1) * PAGE_SIZE}`);
            assert.deepEqual(await ids(), pages[n]);
            const asked = listRequests();
            assert.equal(asked.length, 1);
            assert.equal(asked[0].searchParams.get('limit'), String(PAGE_SIZE));
        }
        assert.equal(await prev.isDisabled(), true);
    });

    it('keeps its page across a visit to the details', async () => {
        await page.getByRole('button', { name: 'Next' }).click();
        await waitForRange(`API keys 51–100`);
        const first = await page.locator('#keys-body .key-name').first().textContent();
        await page.getByRole('button', { name: 'Detail' }).first().click();
        await page.getByRole('heading', { level: 1, name: TEXT.details }).waitFor();
        await page.getByRole('button', { name: '← API keys' }).click();
        await waitForRange(`API keys 51–100`);
        assert.equal(await page.locator('#keys-body .key-name').first().textContent(), first);
        assert.deepEqual(await ids(), pages[1]);
    });

    it('narrows the list by name, once the typing stops', async () => {
        listRequests();
        await search('billing');
        await page.locator('#keys-body .key-name').first().waitFor();
        await page.waitForFunction(() => document.querySelectorAll('#keys-body tr').length === 2);
        await page.waitForLoadState('networkidle');
        assert.deepEqual((await names()).sort(), ['Billing cron', 'Billing worker']);

        const asked = listRequests().filter((u) => u.searchParams.has('q'));
        assert.equal(asked.length, 1, 'one request for the whole word: '
                     + asked.map((u) => u.search).join(' '));
        assert.equal(asked[0].searchParams.get('q'), 'billing');
        assert.equal(asked[0].searchParams.get('after'), null, 'from the first page');
        assert.equal(asked[0].searchParams.get('limit'), String(PAGE_SIZE));
        assert.equal(await page.locator('#pager').isVisible(), false, 'one page: no pager');
        await b.screenshot('list', 'search');
    });

    it('pages through the keys found', async () => {
        // bulk-1, bulk-10..19, bulk-100..199: 111 keys
        await search('BULK-1');
        await waitForRange(`API keys 1–${PAGE_SIZE}`);
        await page.getByRole('button', { name: 'Next' }).click();
        await waitForRange(`API keys 51–100`);
        await page.getByRole('button', { name: 'Next' }).click();
        await waitForRange(`API keys 101–111`);
        for (const name of await names()) assert.match(name, /^bulk-1/);
        const last = listRequests().pop();
        assert.equal(last.searchParams.get('q'), 'BULK-1');
        assert.ok(last.searchParams.get('after'));
    });

    it('says when nothing matches, and shows every key again once cleared', async () => {
        await search('no such name');
        await page.getByText('No API key matches “no such name”.', { exact: true }).waitFor();
        assert.equal(await page.locator('#keys').isVisible(), false);
        assert.equal(await page.getByText(TEXT.empty).isVisible(), false,
                     'not the empty project');

        await page.getByRole('searchbox', { name: 'Search by name' }).fill('');
        await waitForRange(`API keys 1–${PAGE_SIZE}`);
        assert.deepEqual(await ids(), pages[0]);
    });

    it('had no console error, no CSP violation, no dialog', () => {
        assert.deepEqual(b.problems, []);
    });
});

// the test directory of a database file
function srv0dir(db) {
    return db.replace(/\/[^/]*$/, '');
}
