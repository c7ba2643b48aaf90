// What the browser tests of t/page/ share: Debian's Chromium with the
// page's credentials, a list of the problems the page showed (console
// errors, CSP violations, uncaught exceptions, dialogs), and the admin API
// and the protected location called from node, to check what the page did
// and to prepare states.
//
//   const b = await openBrowser(srv);
//   b.page, b.problems, b.expectConsole([/status of 404/]), await b.close()
//   const { adminApi, callApi } = clients(srv);

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

import { ROOT } from './server.mjs';

export const CHROMIUM = process.env.PROJKEY_CHROMIUM || '/usr/bin/chromium';
export const TZ = 'Europe/Paris';
export const SHOTS = join(ROOT, 't', 'out', 'screenshots');

export const TEXT = {
    empty: 'No API key has been created on this project.',
    create: 'Create an API key',
    important: 'Important: copy this key now, it will not be shown again.',
    details: 'API key details',
    updated: 'The API key has been updated.',
};

export const SECRET_RE = /^sk-project-[0-9A-Za-z]{48}$/;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function openBrowser(srv, { width = 1100, height = 760 } = {}) {
    const browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--headless', '--no-sandbox', '--disable-gpu',
               '--no-first-run', '--disable-background-networking'],
    });
    const context = await browser.newContext({
        httpCredentials: { username: srv.user, password: srv.password },
        viewport: { width, height },
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

    const page = await context.newPage();
    page.setDefaultTimeout(10000);
    const problems = [];
    let expected = [];

    page.on('console', (m) => {
        if (m.type() !== 'error' && !/Content.Security.Policy|Refused/i.test(m.text())) {
            return;
        }
        if (expected.some((re) => re.test(m.text()))) return;
        problems.push(`console ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('dialog', async (d) => {
        problems.push(`dialog ${d.type()}: ${d.message()}`);
        await d.dismiss();
    });

    let shot = 0;

    return {
        browser,
        context,
        page,
        problems,
        // console errors a step expects (a failed request Chromium reports)
        expectConsole(list) {
            expected = list;
        },
        async screenshot(prefix, name) {
            mkdirSync(SHOTS, { recursive: true });
            shot += 1;
            await page.screenshot({
                path: join(SHOTS, `${prefix}-${String(shot).padStart(2, '0')}-${name}.png`),
                fullPage: true,
            });
        },
        async close() {
            await browser.close();
        },
    };
}

export function clients(srv) {
    const basic = 'Basic '
        + Buffer.from(`${srv.user}:${srv.password}`).toString('base64');

    async function adminApi(method, path, body) {
        const headers = { Authorization: basic };
        if (body !== undefined) headers['Content-Type'] = 'application/json';
        const res = await fetch(`${srv.pageUrl}api/${path}`, {
            method, headers, body: body === undefined ? undefined : JSON.stringify(body),
        });
        const text = await res.text();
        return { status: res.status, headers: res.headers,
                 data: text ? JSON.parse(text) : null };
    }

    // a request to the protected location with a key
    async function callApi(secret) {
        const res = await fetch(`${srv.apiUrl}reasonings`, {
            headers: { Authorization: `Bearer ${secret}` },
        });
        return { status: res.status, body: await res.text() };
    }

    return { adminApi, callApi };
}

// the nginx error.log lines that must not be there
export function alerts(srv) {
    return srv.errorLog().split('\n')
        .filter((l) => /\[(alert|emerg|crit)\]/.test(l));
}

// "27 Nov 2026, 06:35" of an RFC 3339 time in TZ, as the page writes it
// before the zone's name
export function localTime(iso) {
    return new Intl.DateTimeFormat('en-GB', {
        day: 'numeric', month: 'short', year: 'numeric',
        hour: '2-digit', minute: '2-digit', hour12: false, timeZone: TZ,
    }).format(new Date(iso));
}

// the zone's short name at that time in TZ: CET or CEST
export function zoneName(iso) {
    return new Intl.DateTimeFormat('en-GB', {
        timeZoneName: 'short', timeZone: TZ,
    }).formatToParts(new Date(iso)).find((p) => p.type === 'timeZoneName').value;
}

// a datetime-local value (TZ's wall clock) of a time
export function localInput(date) {
    const parts = Object.fromEntries(new Intl.DateTimeFormat('en-GB', {
        year: 'numeric', month: '2-digit', day: '2-digit',
        hour: '2-digit', minute: '2-digit', hour12: false, timeZone: TZ,
    }).formatToParts(date).map((p) => [p.type, p.value]));
    return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}`;
}
