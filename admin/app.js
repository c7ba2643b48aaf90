// The API keys page: lists, creates, edits, rolls and deletes the
// project's API keys through the admin JSON API next to it (api/keys,
// api/keys/ID, api/nodes, relative to the page, so any admin prefix works).
//
// Addresses: #/ the list, #/new creating a key, #/keys/ID one key.
//
// Data from the server is only ever put in the page with textContent.
// The secret of a new or rolled key is kept nowhere but in the one element
// that shows it, and is removed when the administrator is done or leaves.

'use strict';

(function () {

    const API = 'api/keys';
    const NODES = 'api/nodes';

    const PAGE_SIZE = 50;
    const SEARCH_DELAY = 300;           // ms of quiet typing before a search
    const APPLIED_EVERY = 500;          // ms between two looks at the nodes
    const APPLIED_GIVE_UP = 30000;      // ms after which the count stays
    const EXPIRY_MAX_YEARS = 10;

    const HOUR = 3600 * 1000;
    const ROLL_GRACE = {                // the previous secret's end, from now
        now: 0,
        '1h': HOUR,
        '24h': 24 * HOUR,
        '7d': 7 * 24 * HOUR,
    };

    const ID_RE = /^[0-9A-Za-z]{1,64}$/;

    const NETWORK_ERROR = 'The server could not be reached. Check your '
        + 'connection and try again.';
    const UNREADABLE = 'The server sent an answer this page cannot read. '
        + 'Try again.';
    const NO_SUCH_KEY = 'No such API key in this project.';

    // "27 Nov 2026, 06:35 CET": always with the time zone it is in
    const dateFormat = new Intl.DateTimeFormat(undefined, {
        day: 'numeric',
        month: 'short',
        year: 'numeric',
        hour: '2-digit',
        minute: '2-digit',
        timeZoneName: 'short',
    });

    const $ = (id) => document.getElementById(id);

    // the list: one page of keys, the cursors that led to each page so far
    // (cursors[0] is null, the first page), the search
    const list = {
        q: '',
        cursors: [null],
        page: 0,
        next: null,
        keys: [],
        loaded: false,      // a page has been shown
        loading: false,     // a page is on its way
    };

    let current = null;     // the key of the detail view
    let loadSeq = 0;        // only the latest list request is shown
    let routeSeq = 0;       // only the latest address is shown
    let shownRoute = null;  // the address the page shows
    let searchTimer = 0;
    let watch = null;       // the write whose spread over the nodes is shown
    let retryAction = null;


    // --- the API --------------------------------------------------------

    class ApiError extends Error {
        constructor(message, status, code) {
            super(message);
            this.status = status;
            this.code = code;
        }
    }

    function statusMessage(status) {
        switch (status) {
        case 401:
            return 'You are no longer signed in. Reload the page to sign in '
                + 'again.';
        case 403:
            return 'Only a project administrator can manage API keys.';
        case 502:
        case 503:
        case 504:
            return 'The server is not available right now (HTTP ' + status
                + '). Try again in a moment.';
        default:
            return 'The server could not do this (HTTP ' + status + '). '
                + 'Try again.';
        }
    }

    // method, path relative to the page, optional JSON body; resolves to
    // the decoded answer (null for 204), rejects with an ApiError whose
    // message is written for the administrator
    async function api(method, path, body) {
        const init = {
            method: method,
            credentials: 'same-origin',
            cache: 'no-store',
            headers: { 'Accept': 'application/json' },
        };

        if (body !== undefined) {
            init.headers['Content-Type'] = 'application/json';
            init.body = JSON.stringify(body);
        }

        let res;
        let text;

        try {
            res = await fetch(path, init);
            text = await res.text();
        } catch (e) {
            throw new ApiError(NETWORK_ERROR, 0, 'network');
        }

        let data = null;

        if (text !== '') {
            try {
                data = JSON.parse(text);
            } catch (e) {
                data = null;
            }
        }

        if (!res.ok) {
            const err = data && typeof data === 'object' ? data.error : null;
            if (err && typeof err.message === 'string' && err.message !== '') {
                throw new ApiError(err.message, res.status, err.code);
            }
            throw new ApiError(statusMessage(res.status), res.status);
        }

        if (res.status === 204) {
            return null;
        }

        if (data === null || typeof data !== 'object') {
            throw new ApiError('The server sent an answer this page cannot '
                + 'read (HTTP ' + res.status + '). Try again.', res.status);
        }

        return data;
    }

    function keyPath(id) {
        return API + '/' + encodeURIComponent(id);
    }

    function listPath() {
        const params = new URLSearchParams();
        params.set('limit', String(PAGE_SIZE));
        if (list.cursors[list.page] !== null) {
            params.set('after', list.cursors[list.page]);
        }
        if (list.q !== '') {
            params.set('q', list.q);
        }
        return API + '?' + params.toString();
    }


    // --- helpers ----------------------------------------------------------

    // the name rules of the API: trimmed of ASCII white space, 1 to 100
    // characters, no control characters; returns an error message or ''
    function checkName(raw) {
        const name = trimName(raw);

        if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) {
            return 'The name must not contain control characters.';
        }
        if (name === '') {
            return 'The name must not be empty.';
        }
        if (Array.from(name).length > 100) {
            return 'The name must be at most 100 characters.';
        }
        return '';
    }

    function trimName(raw) {
        return raw.replace(/^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g, '');
    }

    // RFC 3339 UTC to the second, as the API writes times
    function isoSeconds(date) {
        return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
    }

    // a datetime-local value ("2026-11-27T06:35", the viewer's time) of an
    // RFC 3339 time, '' for none
    function localInputValue(iso) {
        if (!iso) {
            return '';
        }
        const d = new Date(iso);
        if (Number.isNaN(d.getTime())) {
            return '';
        }
        const two = (n) => String(n).padStart(2, '0');
        return String(d.getFullYear()).padStart(4, '0') + '-'
            + two(d.getMonth() + 1) + '-' + two(d.getDate()) + 'T'
            + two(d.getHours()) + ':' + two(d.getMinutes());
    }

    // the expiry of a datetime-local input, by the API's rules:
    // { iso } (null for none) or { error }
    function readExpiry(input) {
        if (input.validity && input.validity.badInput) {
            return { error: 'Enter a whole date and time, or leave the '
                + 'expiry empty.' };
        }
        if (input.value === '') {
            return { iso: null };
        }

        // a date-time without an offset is the viewer's local time
        const d = new Date(input.value);
        const now = Date.now();
        const max = new Date(now);
        max.setFullYear(max.getFullYear() + EXPIRY_MAX_YEARS);

        if (Number.isNaN(d.getTime())) {
            return { error: 'Enter a whole date and time, or leave the '
                + 'expiry empty.' };
        }
        if (d.getTime() <= now) {
            return { error: 'The expiry must be in the future.' };
        }
        if (d.getTime() > max.getTime()) {
            return { error: 'The expiry must be at most '
                + EXPIRY_MAX_YEARS + ' years ahead.' };
        }
        return { iso: isoSeconds(d) };
    }

    function el(tag, className, text) {
        const e = document.createElement(tag);
        if (className) {
            e.className = className;
        }
        if (text !== undefined) {
            e.textContent = text;
        }
        return e;
    }

    function formatTime(iso) {
        const d = new Date(iso);
        return Number.isNaN(d.getTime()) ? String(iso) : dateFormat.format(d);
    }

    // a <time> in the viewer's local time and zone, or "Never"
    function timeEl(iso, never) {
        if (iso === null || iso === undefined || iso === '') {
            return el('span', 'never', never || '—');
        }

        const d = new Date(iso);
        if (Number.isNaN(d.getTime())) {
            return el('span', null, String(iso));
        }

        const t = el('time', null, dateFormat.format(d));
        t.dateTime = iso;
        t.title = iso;
        return t;
    }

    function statusText(status) {
        switch (status) {
        case 'active':
            return 'Active';
        case 'disabled':
            return 'Disabled';
        case 'expired':
            return 'Expired';
        default:
            return String(status);
        }
    }

    function badge(status) {
        const kind = status === 'active' || status === 'expired'
            ? status : 'disabled';
        return el('span', 'badge badge-' + kind, statusText(status));
    }

    function setText(id, text) {
        const e = $(id);
        if (e.textContent !== text) {
            e.textContent = text;
        }
        return e;
    }

    function showPageError(message, retry) {
        setText('page-error-text', message);
        $('retry').hidden = !retry;
        retryAction = retry || null;
        $('page-error').hidden = false;
    }

    function clearPageError() {
        $('page-error').hidden = true;
        setText('page-error-text', '');
        retryAction = null;
    }

    function setFieldError(input, errorId, message) {
        setText(errorId, message);
        if (message) {
            input.setAttribute('aria-invalid', 'true');
        } else {
            input.removeAttribute('aria-invalid');
        }
    }

    function busy(button, on) {
        button.disabled = on;
        if (on) {
            button.setAttribute('aria-busy', 'true');
        } else {
            button.removeAttribute('aria-busy');
        }
    }


    // --- addresses ------------------------------------------------------

    function parseRoute(hash) {
        const h = hash.replace(/^#/, '');

        if (h === '' || h === '/') {
            return { view: 'list' };
        }
        if (h === '/new') {
            return { view: 'create' };
        }

        const m = /^\/keys\/(.*)$/.exec(h);
        if (m) {
            let id;
            try {
                id = decodeURIComponent(m[1]);
            } catch (e) {
                id = '';
            }
            return { view: 'detail', id: id };
        }
        return { view: 'list', unknown: true };
    }

    function currentHash() {
        return location.hash === '' ? '#/' : location.hash;
    }

    // a new address in the history; "back" remembers that the one before
    // is the list, so that "← API keys" can go back to it
    function navigate(hash) {
        const fromList = parseRoute(currentHash()).view === 'list';
        history.pushState({ back: fromList }, '', hash);
        route();
    }

    function replaceRoute(hash) {
        history.replaceState(null, '', hash);
        shownRoute = hash;
    }

    function goToList() {
        if (history.state && history.state.back) {
            history.back();
        } else {
            navigate('#/');
        }
    }

    // shows what the address says (on start, Back, Forward, a typed hash)
    function route() {
        const hash = currentHash();
        if (hash === shownRoute) {
            return;
        }
        shownRoute = hash;
        routeSeq++;
        stopWatch();

        const r = parseRoute(hash);

        if (r.view === 'create') {
            openCreate();
        } else if (r.view === 'detail') {
            openDetail(r.id);
        } else {
            if (r.unknown) {
                replaceRoute('#/');
            }
            showList();
        }
    }


    // --- views ------------------------------------------------------------

    const views = ['list', 'create', 'detail', 'notfound'];

    // every view change forgets a secret shown and moves the focus to the
    // view's heading (or to focus)
    function show(view, focus) {
        forgetSecret();
        if (view !== 'list') {
            setText('list-status', '');
        }

        for (const v of views) {
            $('view-' + v).hidden = v !== view;
        }
        $('route-loading').hidden = true;

        clearPageError();
        window.scrollTo(0, 0);

        const target = focus || $(view + '-title');
        target.focus();
    }

    function showLoading() {
        for (const v of views) {
            $('view-' + v).hidden = true;
        }
        clearPageError();
        $('route-loading').hidden = false;
    }

    function showNotFound(message) {
        current = null;
        setText('notfound-text', message);
        show('notfound');
    }


    // --- the list ---------------------------------------------------------

    function showList(message) {
        show('list');
        setText('list-status', message || '');
        loadKeys();
    }

    function renderList() {
        const keys = list.keys;
        const noKeyAtAll = keys.length === 0 && list.q === ''
            && list.page === 0;
        const hasPages = list.page > 0 || list.next !== null;

        $('loading').hidden = true;
        $('empty').hidden = !noKeyAtAll;
        $('create-open').hidden = noKeyAtAll;
        $('search-form').hidden = noKeyAtAll;
        $('keys').hidden = keys.length === 0;
        $('keys').removeAttribute('aria-busy');

        const noMatch = keys.length === 0 && !noKeyAtAll;
        $('no-match').hidden = !noMatch;
        setText('no-match', !noMatch ? ''
            : list.q !== '' ? 'No API key matches “' + list.q + '”.'
            : 'No more API keys.');

        $('keys-body').replaceChildren(...keys.map(row));
        renderPager(hasPages);
    }

    function renderPager(hasPages) {
        const prev = $('page-prev');
        const next = $('page-next');
        const focused = document.activeElement;

        $('pager').hidden = !hasPages;
        prev.disabled = list.page === 0;
        next.disabled = list.next === null;

        const first = list.page * PAGE_SIZE + 1;
        const last = list.page * PAGE_SIZE + list.keys.length;
        setText('page-range', list.keys.length === 0 ? ''
            : 'API keys ' + first + '–' + last);

        // a pager button that is now disabled cannot keep the focus
        if ((focused === prev || focused === next) && focused.disabled) {
            const other = focused === prev ? next : prev;
            (other.disabled ? $('list-title') : other).focus();
        }
    }

    function cell(className, label) {
        const td = el('td', className);
        td.dataset.label = label;
        return td;
    }

    function row(key) {
        const tr = el('tr');
        const nameId = 'key-name-' + key.id;

        const keyCell = cell('cell-key', 'API key');
        const name = el('span', 'key-name', key.name);
        name.id = nameId;
        keyCell.append(name, el('code', 'preview', key.preview));

        const statusCell = cell('cell-status', 'Status');
        statusCell.append(badge(key.status));

        const byCell = cell('cell-by', 'Created by');
        byCell.textContent = key.created_by;

        const createdCell = cell('cell-created', 'Created on');
        createdCell.append(timeEl(key.created_at));

        const usedCell = cell('cell-used', 'Last used');
        usedCell.append(timeEl(key.last_used_at, 'Never'));

        const expiresCell = cell('cell-expires', 'Expires');
        expiresCell.append(timeEl(key.expires_at, 'Never'));

        const actionCell = el('td', 'cell-action');
        const detail = el('button', 'btn small', 'Detail');
        detail.type = 'button';
        detail.setAttribute('aria-describedby', nameId);
        detail.addEventListener('click', () => {
            navigate('#/keys/' + encodeURIComponent(key.id));
        });
        actionCell.append(detail);

        tr.append(keyCell, statusCell, byCell, createdCell, usedCell,
                  expiresCell, actionCell);
        return tr;
    }

    async function loadKeys() {
        const seq = ++loadSeq;

        list.loading = true;
        if (list.loaded) {
            $('keys').setAttribute('aria-busy', 'true');
        }

        try {
            const data = await api('GET', listPath());
            if (seq !== loadSeq) {
                return;
            }
            list.loading = false;
            if (!Array.isArray(data.keys)) {
                throw new ApiError(UNREADABLE, 200);
            }

            // a page emptied meanwhile (keys deleted): start again
            if (data.keys.length === 0 && list.page > 0) {
                resetPages();
                loadKeys();
                return;
            }

            list.keys = data.keys.slice(0, PAGE_SIZE);
            list.next = data.next === null || data.next === undefined
                || data.next === '' ? null : String(data.next);
            list.loaded = true;
            clearPageError();
            renderList();
        } catch (e) {
            if (seq !== loadSeq) {
                return;
            }
            list.loading = false;
            $('loading').hidden = true;
            $('keys').removeAttribute('aria-busy');
            showPageError('The API keys could not be loaded. ' + e.message,
                          () => {
                              clearPageError();
                              $('loading').hidden = list.loaded;
                              loadKeys();
                          });
        }
    }

    function resetPages() {
        list.cursors = [null];
        list.page = 0;
        list.next = null;
    }

    // a click while a page is on its way is not one more page
    function nextPage() {
        if (list.next === null || list.loading) {
            return;
        }
        list.cursors.length = list.page + 1;
        list.cursors.push(list.next);
        list.page++;
        loadKeys();
    }

    function previousPage() {
        if (list.page === 0 || list.loading) {
            return;
        }
        list.page--;
        loadKeys();
    }

    function search(now) {
        clearTimeout(searchTimer);
        searchTimer = 0;

        const q = $('search').value.trim();
        if (q === list.q) {
            return;
        }
        if (!now) {
            searchTimer = setTimeout(() => search(true), SEARCH_DELAY);
            return;
        }
        list.q = q;
        resetPages();
        loadKeys();
    }

    function clearSearch() {
        clearTimeout(searchTimer);
        $('search').value = '';
        list.q = '';
        resetPages();
    }


    // --- creating ---------------------------------------------------------

    function openCreate() {
        const input = $('create-name');
        const expires = $('create-expires');
        input.value = '';
        expires.value = '';
        setFieldError(input, 'create-name-error', '');
        setFieldError(expires, 'create-expires-error', '');
        current = null;
        show('create', input);
    }

    function createBody() {
        const input = $('create-name');
        const expires = $('create-expires');
        const problem = checkName(input.value);

        if (problem) {
            setFieldError(input, 'create-name-error', problem);
            input.focus();
            return null;
        }
        setFieldError(input, 'create-name-error', '');

        const expiry = readExpiry(expires);
        if (expiry.error) {
            setFieldError(expires, 'create-expires-error', expiry.error);
            expires.focus();
            return null;
        }
        setFieldError(expires, 'create-expires-error', '');

        const body = { name: trimName(input.value) };
        if (expiry.iso !== null) {
            body.expires_at = expiry.iso;
        }
        return body;
    }

    async function submitCreate(ev) {
        ev.preventDefault();

        const input = $('create-name');
        const button = $('create-submit');
        const body = createBody();

        if (body === null) {
            return;
        }

        const seq = routeSeq;
        busy(button, true);

        let data;
        try {
            data = await api('POST', API, body);
        } catch (e) {
            setFieldError(input, 'create-name-error', e.message);
            input.focus();
            return;
        } finally {
            busy(button, false);
        }

        if (!data || !data.key || typeof data.secret !== 'string') {
            setFieldError(input, 'create-name-error', 'The key was created, '
                + 'but the server sent an answer this page cannot read.');
            return;
        }
        if (seq !== routeSeq) {
            return;
        }

        input.value = '';
        $('create-expires').value = '';

        // the form's address becomes the list's: Back does not return to
        // a form already sent
        replaceRoute('#/');
        clearSearch();
        list.keys = [data.key].concat(list.keys.filter(
            (k) => k.id !== data.key.id)).slice(0, PAGE_SIZE);

        show('list');
        renderList();
        showSecret('list', data.key, data.secret, '');
        loadKeys();
    }


    // --- the new secret, once -----------------------------------------------

    // view: the view whose slot shows it; note: a line under the secret
    function showSecret(view, key, secret, note) {
        const slot = document.querySelector('[data-slot="' + view + '"]');
        slot.append($('created'));
        setText('created-name', '“' + key.name + '”');
        setText('secret', secret);
        setText('created-note', note || '');
        setText('copy-status', '');
        $('created').hidden = false;
        $('created-title').focus();
    }

    function forgetSecret() {
        setText('secret', '');
        setText('created-name', '');
        setText('created-note', '');
        setText('copy-status', '');
        $('created').hidden = true;
    }

    function doneWithSecret() {
        const inDetail = !$('view-detail').hidden;
        forgetSecret();
        (inDetail ? $('roll-submit') : $('list-title')).focus();
    }

    function selectSecret() {
        const range = document.createRange();
        range.selectNodeContents($('secret'));
        const sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
    }

    async function copySecret() {
        const secret = $('secret').textContent;
        if (!secret) {
            return;
        }

        try {
            if (!navigator.clipboard || !window.isSecureContext) {
                throw new Error('no clipboard');
            }
            await navigator.clipboard.writeText(secret);
            setText('copy-status', 'Copied');
        } catch (e) {
            selectSecret();
            let copied = false;
            try {
                copied = document.execCommand('copy');
            } catch (e2) {
                copied = false;
            }
            setText('copy-status', copied ? 'Copied'
                : 'The key is selected: press Ctrl+C (⌘C on a Mac) to copy it.');
        }
    }


    // --- one key --------------------------------------------------------------

    // the Status choice of a key: an expired key keeps its stored status,
    // which KEY does not say; Active is shown, and sent only if changed
    function statusChoice(key) {
        return key.status === 'disabled' ? 'disabled' : 'active';
    }

    function previousText(key) {
        if (!key.previous_preview) {
            return '';
        }
        if (!key.previous_expires_at) {
            return key.previous_preview;
        }
        const ends = new Date(key.previous_expires_at).getTime();
        return key.previous_preview + (ends > Date.now()
            ? ', works until ' : ', stopped working on ')
            + formatTime(key.previous_expires_at);
    }

    function fillFacts(key) {
        setText('detail-preview', key.preview);
        $('detail-status-now').replaceChildren(badge(key.status));
        setText('detail-created-by', key.created_by);
        $('detail-created-at').replaceChildren(timeEl(key.created_at));
        $('detail-last-used').replaceChildren(timeEl(key.last_used_at,
                                                     'Never'));
        $('detail-expires-at').replaceChildren(timeEl(key.expires_at,
                                                      'Never'));
        $('detail-previous').hidden = !key.previous_preview;
        setText('detail-previous-text', previousText(key));

        const note = $('detail-expired-note');
        note.hidden = key.status !== 'expired';
        note.textContent = key.status !== 'expired' ? ''
            : 'This key expired on ' + formatTime(key.expires_at) + ': it is '
              + 'refused whatever its status, until its expiry is moved '
              + 'later or removed.';
    }

    // keepEdits: a field the administrator has changed already keeps
    // their value (a fresh copy of the key may arrive after they started)
    function fillDetail(key, keepEdits) {
        const name = $('detail-name');
        const status = $('detail-status');
        const expires = $('detail-expires');
        const old = keepEdits ? current : null;

        current = key;
        fillFacts(key);

        if (!old || name.value === old.name) {
            name.value = key.name;
        }
        if (!old || status.value === statusChoice(old)) {
            status.value = statusChoice(key);
        }
        if (!old || expires.value === localInputValue(old.expires_at)) {
            expires.value = localInputValue(key.expires_at);
        }
    }

    function clearDetailMessages() {
        setFieldError($('detail-name'), 'detail-name-error', '');
        setFieldError($('detail-expires'), 'detail-expires-error', '');
        setText('detail-message', '');
        setText('detail-error', '');
        setText('detail-applied', '');
        setText('roll-applied', '');
        setText('roll-error', '');
    }

    function cachedKey(id) {
        return list.keys.find((k) => k.id === id) || null;
    }

    // the key of the address #/keys/ID: at once from the list if it is
    // there, then what the server has now
    async function openDetail(id) {
        const seq = routeSeq;

        current = null;
        if (!ID_RE.test(id)) {
            showNotFound(NO_SUCH_KEY);
            return;
        }

        const cached = cachedKey(id);
        if (cached) {
            showDetail(cached);
        } else {
            showLoading();
        }

        try {
            const data = await api('GET', keyPath(id));
            if (seq !== routeSeq) {
                return;
            }
            if (!data.key) {
                throw new ApiError(UNREADABLE, 200);
            }
            if (cached) {
                fillDetail(data.key, true);
            } else {
                showDetail(data.key);
            }
        } catch (e) {
            if (seq === routeSeq) {
                detailLoadFailed(e, Boolean(cached));
            }
        }
    }

    function showDetail(key) {
        $('roll-when').value = '24h';
        fillDetail(key);
        clearDetailMessages();
        show('detail');
    }

    function detailLoadFailed(e, shown) {
        if (e.status === 404) {
            showNotFound(e.message);
        } else if (shown) {
            setText('detail-error', e.message);
        } else {
            $('route-loading').hidden = true;
            showPageError('The API key could not be loaded. ' + e.message,
                          () => {
                              shownRoute = null;
                              route();
                          });
        }
    }

    // the PATCH body of the detail form, null if a field is wrong
    function detailBody() {
        const input = $('detail-name');
        const expires = $('detail-expires');
        const problem = checkName(input.value);

        if (problem) {
            setFieldError(input, 'detail-name-error', problem);
            input.focus();
            return null;
        }
        setFieldError(input, 'detail-name-error', '');

        const body = { name: trimName(input.value) };
        const status = $('detail-status').value;

        if (current.status !== 'expired' || status !== statusChoice(current)) {
            body.status = status;
        }

        if (expires.value !== localInputValue(current.expires_at)
            || (expires.validity && expires.validity.badInput))
        {
            const expiry = readExpiry(expires);
            if (expiry.error) {
                setFieldError(expires, 'detail-expires-error', expiry.error);
                expires.focus();
                return null;
            }
            body.expires_at = expiry.iso;
        }
        setFieldError(expires, 'detail-expires-error', '');

        return body;
    }

    // a change of what the gateways enforce (not a rename)
    function changesAccess(body, key) {
        return (body.status !== undefined && body.status !== key.status)
            || body.expires_at !== undefined;
    }

    async function submitDetail(ev) {
        ev.preventDefault();

        if (!current) {
            return;
        }

        const button = $('detail-save');

        // the count shown is of the previous write
        stopWatch();
        setText('detail-applied', '');
        setText('roll-applied', '');
        setText('detail-message', '');
        setText('detail-error', '');

        const body = detailBody();
        if (body === null) {
            return;
        }

        const key = current;
        const seq = routeSeq;
        busy(button, true);

        try {
            const data = await api('PATCH', keyPath(key.id), body);
            if (seq !== routeSeq) {
                return;
            }
            if (data.key) {
                fillDetail(data.key);
                list.keys = list.keys.map(
                    (k) => (k.id === key.id ? data.key : k));
            }
            setText('detail-message', typeof data.message === 'string'
                ? data.message : 'The API key has been updated.');
            if (changesAccess(body, key)) {
                watchApplied(data.revision, 'detail-applied');
            }
        } catch (e) {
            if (seq === routeSeq) {
                setText('detail-error', e.message);
            }
        } finally {
            busy(button, false);
        }
    }


    // --- rolling ------------------------------------------------------------

    function rollBody(choice) {
        const grace = ROLL_GRACE[choice];
        if (!grace) {
            return {};      // the API's default: the previous one at once
        }
        return { previous_expires_at: isoSeconds(new Date(Date.now() + grace)) };
    }

    function rollNote(key) {
        if (!key.previous_expires_at
            || new Date(key.previous_expires_at).getTime() <= Date.now())
        {
            return 'The previous secret no longer works.';
        }
        return 'The previous secret works until '
            + formatTime(key.previous_expires_at) + '.';
    }

    async function submitRoll(ev) {
        ev.preventDefault();

        if (!current) {
            return;
        }

        const key = current;
        const seq = routeSeq;
        const button = $('roll-submit');

        setText('roll-error', '');
        setText('detail-message', '');
        busy(button, true);

        let data;
        try {
            data = await api('POST', keyPath(key.id) + '/roll',
                             rollBody($('roll-when').value));
        } catch (e) {
            if (seq === routeSeq) {
                setText('roll-error', e.message);
            }
            return;
        } finally {
            busy(button, false);
        }

        if (seq !== routeSeq) {
            return;
        }
        if (!data || !data.key || typeof data.secret !== 'string') {
            setText('roll-error', 'The key was rolled, but the server sent '
                + 'an answer this page cannot read.');
            return;
        }

        fillDetail(data.key);
        list.keys = list.keys.map((k) => (k.id === key.id ? data.key : k));
        showSecret('detail', data.key, data.secret, rollNote(data.key));
        watchApplied(data.revision, 'roll-applied');
    }


    // --- how many gateways have a change -------------------------------------

    // polls GET nodes until every live node has applied revision (or the
    // bound passes: then the last count stays), shown in the element
    // outId; a node list that cannot be read, or an answer without a
    // revision, shows nothing
    function watchApplied(revision, outId) {
        stopWatch();
        setText('detail-applied', '');
        setText('roll-applied', '');

        if (typeof revision !== 'number' || !Number.isFinite(revision)) {
            return;
        }
        watch = {
            revision: revision,
            outId: outId,
            until: Date.now() + APPLIED_GIVE_UP,
            timer: 0,
        };
        pollApplied(watch);
    }

    function stopWatch() {
        if (watch) {
            clearTimeout(watch.timer);
            watch = null;
        }
    }

    function appliedCount(data, revision) {
        const nodes = Array.isArray(data.nodes) ? data.nodes : [];
        const live = nodes.filter((n) => n && typeof n === 'object'
                                         && n.stale !== true);
        const done = live.filter((n) => typeof n.revision === 'number'
                                        && n.revision >= revision);
        return { done: done.length, of: live.length };
    }

    async function pollApplied(w) {
        let data;
        try {
            data = await api('GET', NODES);
        } catch (e) {
            data = null;
        }
        if (watch !== w) {
            return;
        }
        if (data === null) {
            stopWatch();
            return;
        }

        const n = appliedCount(data, w.revision);
        if (n.of > 0) {
            setText(w.outId, 'Applied on ' + n.done + ' of ' + n.of
                + ' gateways');
        }
        if ((n.of > 0 && n.done === n.of) || Date.now() >= w.until) {
            stopWatch();
            return;
        }
        w.timer = setTimeout(() => pollApplied(w), APPLIED_EVERY);
    }


    // --- deleting -------------------------------------------------------------

    function openDelete() {
        if (!current) {
            return;
        }
        setText('delete-dialog-name', current.name);
        setText('delete-error', '');
        $('delete-dialog').showModal();
        $('delete-cancel').focus();
    }

    async function confirmDelete() {
        if (!current) {
            return;
        }

        const key = current;
        const button = $('delete-confirm');
        setText('delete-error', '');
        busy(button, true);

        try {
            await api('DELETE', keyPath(key.id));
        } catch (e) {
            setText('delete-error', e.message);
            return;
        } finally {
            busy(button, false);
        }

        $('delete-dialog').close();
        current = null;
        list.keys = list.keys.filter((k) => k.id !== key.id);

        // the key's address is gone: it becomes the list's
        replaceRoute('#/');
        routeSeq++;
        stopWatch();
        showList('The API key “' + key.name + '” has been deleted.');
    }


    // --- wiring ---------------------------------------------------------------

    function zoneHints() {
        const zone = new Intl.DateTimeFormat().resolvedOptions().timeZone;
        if (!zone) {
            return;
        }
        for (const hint of document.querySelectorAll('[data-zone-hint]')) {
            hint.textContent += ' In your time zone, ' + zone + '.';
        }
    }

    function clearOnInput(id, errorId, alsoId) {
        $(id).addEventListener('input', () => {
            setFieldError($(id), errorId, '');
            if (alsoId) {
                setText(alsoId, '');
            }
        });
    }

    function wireList() {
        $('create-open').addEventListener('click', () => navigate('#/new'));
        $('create-open-empty').addEventListener('click',
                                                () => navigate('#/new'));
        $('search').addEventListener('input', () => search(false));
        $('search-form').addEventListener('submit', (ev) => {
            ev.preventDefault();
            search(true);
        });
        $('page-next').addEventListener('click', nextPage);
        $('page-prev').addEventListener('click', previousPage);
    }

    function wireForms() {
        $('create-form').addEventListener('submit', submitCreate);
        $('detail-form').addEventListener('submit', submitDetail);
        $('roll-form').addEventListener('submit', submitRoll);

        // a message about the previous value goes once the field changes
        clearOnInput('create-name', 'create-name-error');
        clearOnInput('create-expires', 'create-expires-error');
        clearOnInput('detail-name', 'detail-name-error', 'detail-message');
        clearOnInput('detail-expires', 'detail-expires-error',
                     'detail-message');
        $('detail-status').addEventListener('change', () => {
            setText('detail-message', '');
        });
        $('detail-expires-clear').addEventListener('click', () => {
            $('detail-expires').value = '';
            setFieldError($('detail-expires'), 'detail-expires-error', '');
            setText('detail-message', '');
        });
    }

    function wireSecret() {
        $('copy').addEventListener('click', copySecret);
        $('created-done').addEventListener('click', doneWithSecret);

        // the secret is gone once the page is left, even from the
        // back/forward cache
        window.addEventListener('pagehide', forgetSecret);
    }

    function wireDelete() {
        $('delete-open').addEventListener('click', openDelete);
        $('delete-cancel').addEventListener('click', () => {
            $('delete-dialog').close();
        });
        $('delete-confirm').addEventListener('click', confirmDelete);
        $('delete-dialog').addEventListener('close', () => {
            if (!$('view-detail').hidden) {
                $('delete-open').focus();
            }
        });
    }

    function start() {
        zoneHints();
        wireList();
        wireForms();
        wireSecret();
        wireDelete();

        for (const b of document.querySelectorAll('[data-back]')) {
            b.addEventListener('click', goToList);
        }
        $('retry').addEventListener('click', () => {
            if (retryAction) {
                retryAction();
            }
        });

        window.addEventListener('popstate', route);
        window.addEventListener('hashchange', route);

        route();
    }

    start();
})();
