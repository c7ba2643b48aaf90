// "Applied on N of M gateways" with two gateways: two nginx instances on
// the same SQLite file, node=gw-a and node=gw-b (SPEC "GET nodes": with
// SQLite, the nodes are the nginx instances sharing the file). The page is
// on gw-a; after a status change and a roll it counts until both have it.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { startServer } from './server.mjs';
import { TEXT, SECRET_RE, alerts, clients, openBrowser, sleep } from './browser.mjs';

let a;
let gwb;
let b;
let page;
let adminA;
let callA;
let callB;

async function status(call, secret, want, ms = 5000) {
    const until = Date.now() + ms;
    let r;
    for (;;) {
        r = await call(secret);
        if (r.status === want || Date.now() > until) break;
        await sleep(100);
    }
    assert.equal(r.status, want, r.body);
}

describe('applied on two gateways', { concurrency: false }, () => {
    before(async () => {
        a = await startServer({ node: 'gw-a' });
        gwb = await startServer({ node: 'gw-b', db: a.db });
        b = await openBrowser(a);
        page = b.page;
        ({ adminApi: adminA, callApi: callA } = clients(a));
        ({ callApi: callB } = clients(gwb));
    });

    after(async () => {
        await b?.close();
        const found = [];
        for (const s of [gwb, a]) {
            if (s) {
                found.push(...alerts(s));
                await s.stop();
            }
        }
        assert.deepEqual(found, [], 'no alert in nginx error.log');
    });

    it('GET nodes lists both gateways', async () => {
        const until = Date.now() + 10000;
        let nodes = [];
        while (Date.now() < until) {
            const r = await adminA('GET', 'nodes');
            assert.equal(r.status, 200);
            nodes = r.data.nodes.map((n) => n.node).sort();
            if (nodes.length === 2) break;
            await sleep(200);
        }
        assert.deepEqual(nodes, ['gw-a', 'gw-b']);
    });

    it('counts the gateways that have a status change', async () => {
        const made = (await adminA('POST', 'keys', { name: 'Two gateways' })).data;
        await status(callB, made.secret, 200);

        await page.goto(`${a.pageUrl}#/keys/${made.key.id}`);
        await page.getByRole('heading', { level: 1, name: TEXT.details }).waitFor();
        await page.getByRole('combobox', { name: 'Status' }).selectOption({ label: 'Disabled' });
        await page.getByRole('button', { name: 'Save' }).click();
        await page.getByRole('status').filter({ hasText: TEXT.updated }).waitFor();

        // gw-a has it at once; gw-b within its sync interval
        await page.locator('#detail-applied', { hasText: /^Applied on 2 of 2 gateways$/ })
            .waitFor({ timeout: 15000 });
        await b.screenshot('nodes', 'applied-2-of-2');
        await status(callA, made.secret, 401, 0);
        await status(callB, made.secret, 401, 0);
    });

    it('and the gateways that have a roll', async () => {
        const made = (await adminA('POST', 'keys', { name: 'Rolled on two' })).data;
        await page.goto(`${a.pageUrl}#/keys/${made.key.id}`);
        await page.getByRole('heading', { level: 1, name: TEXT.details }).waitFor();
        await page.getByLabel('The previous secret stops working').selectOption({ label: 'Now' });
        await page.getByRole('button', { name: 'Roll key' }).click();
        await page.getByText(TEXT.important, { exact: true }).waitFor();
        const secret = (await page.locator('#secret').textContent()).trim();
        assert.match(secret, SECRET_RE);
        await page.locator('#roll-applied', { hasText: /^Applied on 2 of 2 gateways$/ })
            .waitFor({ timeout: 15000 });
        await status(callB, secret, 200, 0);
        await status(callB, made.secret, 401, 0);
    });

    it('had no console error, no CSP violation, no dialog', () => {
        assert.deepEqual(b.problems, []);
    });
});
