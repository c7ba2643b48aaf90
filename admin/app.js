// The API keys page: lists, creates, edits and deletes the project's API
// keys through the admin JSON API next to it (api/keys, api/keys/ID,
// relative to the page, so any admin prefix works).
//
// Data from the server is only ever put in the page with textContent.
// The secret of a new key is kept nowhere but in the one element that
// shows it, and is removed when the administrator is done or leaves.

'use strict';

(function () {

    const API = 'api/keys';

    const NETWORK_ERROR = 'The server could not be reached. Check your '
        + 'connection and try again.';

    const dateFormat = new Intl.DateTimeFormat(undefined, {
        dateStyle: 'medium',
        timeStyle: 'short',
    });

    const $ = (id) => document.getElementById(id);

    let keys = [];          // the list, newest first
    let current = null;     // the key of the detail view
    let loadSeq = 0;        // only the latest list request is shown


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


    // --- helpers ----------------------------------------------------------

    // the name rules of the API: trimmed of ASCII white space, 1 to 100
    // characters, no control characters; returns an error message or ''
    function checkName(raw) {
        const name = raw.replace(/^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g, '');

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

    // a <time> in the viewer's local time, or "Never"
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
        return status === 'active' ? 'Active'
            : status === 'disabled' ? 'Disabled' : String(status);
    }

    function badge(status) {
        return el('span', 'badge badge-' + (status === 'active' ? 'active'
            : 'disabled'), statusText(status));
    }

    function setText(id, text) {
        const e = $(id);
        e.textContent = text;
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

    let retryAction = null;

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


    // --- views ------------------------------------------------------------

    const views = ['list', 'create', 'detail'];

    function show(view, focus) {
        if (view !== 'list') {
            forgetSecret();
            setText('list-status', '');
        }

        for (const v of views) {
            $('view-' + v).hidden = v !== view;
        }

        clearPageError();
        window.scrollTo(0, 0);

        const target = focus || $(view + '-title');
        target.focus();
    }


    // --- the list ---------------------------------------------------------

    function renderList() {
        const body = $('keys-body');

        $('loading').hidden = true;
        $('empty').hidden = keys.length !== 0;
        $('keys').hidden = keys.length === 0;
        $('create-open').hidden = keys.length === 0;

        body.replaceChildren(...keys.map(row));
    }

    function row(key) {
        const tr = el('tr');
        const nameId = 'key-name-' + key.id;

        const keyCell = el('td', 'cell-key');
        keyCell.dataset.label = 'API key';
        const name = el('span', 'key-name', key.name);
        name.id = nameId;
        keyCell.append(name, el('code', 'preview', key.preview));

        const statusCell = el('td', 'cell-status');
        statusCell.dataset.label = 'Status';
        statusCell.append(badge(key.status));

        const byCell = el('td', 'cell-by', key.created_by);
        byCell.dataset.label = 'Created by';

        const createdCell = el('td', 'cell-created');
        createdCell.dataset.label = 'Created on';
        createdCell.append(timeEl(key.created_at));

        const usedCell = el('td', 'cell-used');
        usedCell.dataset.label = 'Last used';
        usedCell.append(timeEl(key.last_used_at, 'Never'));

        const actionCell = el('td', 'cell-action');
        const detail = el('button', 'btn small', 'Detail');
        detail.type = 'button';
        detail.setAttribute('aria-describedby', nameId);
        detail.addEventListener('click', () => openDetail(key));
        actionCell.append(detail);

        tr.append(keyCell, statusCell, byCell, createdCell, usedCell,
                  actionCell);
        return tr;
    }

    async function loadKeys() {
        const seq = ++loadSeq;

        try {
            const data = await api('GET', API);
            if (seq !== loadSeq) {
                return;
            }
            if (!Array.isArray(data.keys)) {
                throw new ApiError('The server sent an answer this page '
                    + 'cannot read. Try again.', 200);
            }
            keys = data.keys;
            clearPageError();
            renderList();
        } catch (e) {
            if (seq !== loadSeq) {
                return;
            }
            $('loading').hidden = true;
            showPageError('The API keys could not be loaded. ' + e.message,
                          () => {
                              clearPageError();
                              $('loading').hidden = false;
                              loadKeys();
                          });
        }
    }

    function backToList(message) {
        show('list');
        setText('list-status', message || '');
        loadKeys();
    }


    // --- creating ---------------------------------------------------------

    function openCreate() {
        const input = $('create-name');
        input.value = '';
        setFieldError(input, 'create-name-error', '');
        show('create', input);
    }

    async function submitCreate(ev) {
        ev.preventDefault();

        const input = $('create-name');
        const button = $('create-submit');
        const problem = checkName(input.value);

        if (problem) {
            setFieldError(input, 'create-name-error', problem);
            input.focus();
            return;
        }

        setFieldError(input, 'create-name-error', '');
        busy(button, true);

        let data;
        try {
            data = await api('POST', API, { name: trimName(input.value) });
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

        input.value = '';
        keys = [data.key].concat(keys.filter((k) => k.id !== data.key.id));

        show('list', $('created-title'));
        renderList();
        showSecret(data.key, data.secret);
        $('created-title').focus();
        loadKeys();
    }


    // --- the new key, once --------------------------------------------------

    function showSecret(key, secret) {
        setText('created-name', '“' + key.name + '”');
        setText('secret', secret);
        setText('copy-status', '');
        $('created').hidden = false;
    }

    function forgetSecret() {
        setText('secret', '');
        setText('created-name', '');
        setText('copy-status', '');
        $('created').hidden = true;
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

    // keepEdits: a field the administrator has changed already keeps
    // their value (a fresh copy of the key may arrive after they started)
    function fillDetail(key, keepEdits) {
        const name = $('detail-name');
        const status = $('detail-status');
        const old = current;

        current = key;
        setText('detail-preview', key.preview);
        setText('detail-created-by', key.created_by);
        $('detail-created-at').replaceChildren(timeEl(key.created_at));
        $('detail-last-used').replaceChildren(timeEl(key.last_used_at,
                                                     'Never'));

        if (!keepEdits || !old || name.value === old.name) {
            name.value = key.name;
        }
        if (!keepEdits || !old || status.value === old.status) {
            status.value = key.status;
        }
    }

    async function openDetail(key) {
        fillDetail(key);
        setFieldError($('detail-name'), 'detail-name-error', '');
        setText('detail-message', '');
        setText('detail-error', '');
        show('detail');

        // the list may be old: show what the server has now
        try {
            const data = await api('GET', keyPath(key.id));
            if (current && current.id === key.id && data.key) {
                fillDetail(data.key, true);
            }
        } catch (e) {
            if (current && current.id === key.id) {
                setText('detail-error', e.message);
            }
        }
    }

    async function submitDetail(ev) {
        ev.preventDefault();

        if (!current) {
            return;
        }

        const input = $('detail-name');
        const button = $('detail-save');
        const problem = checkName(input.value);

        setText('detail-message', '');
        setText('detail-error', '');

        if (problem) {
            setFieldError(input, 'detail-name-error', problem);
            input.focus();
            return;
        }
        setFieldError(input, 'detail-name-error', '');

        const id = current.id;
        busy(button, true);

        try {
            const data = await api('PATCH', keyPath(id), {
                name: trimName(input.value),
                status: $('detail-status').value,
            });
            if (!current || current.id !== id) {
                return;
            }
            if (data.key) {
                fillDetail(data.key);
                keys = keys.map((k) => (k.id === id ? data.key : k));
            }
            setText('detail-message', typeof data.message === 'string'
                ? data.message : 'The API key has been updated.');
        } catch (e) {
            setText('detail-error', e.message);
        } finally {
            busy(button, false);
        }
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
        keys = keys.filter((k) => k.id !== key.id);
        renderList();
        backToList('The API key “' + key.name + '” has been deleted.');
    }


    // --- wiring ---------------------------------------------------------------

    function start() {
        $('create-open').addEventListener('click', openCreate);
        $('create-open-empty').addEventListener('click', openCreate);
        $('create-form').addEventListener('submit', submitCreate);
        $('copy').addEventListener('click', copySecret);
        $('created-done').addEventListener('click', () => {
            forgetSecret();
            $('list-title').focus();
        });

        for (const b of document.querySelectorAll('[data-back]')) {
            b.addEventListener('click', () => {
                current = null;
                backToList();
            });
        }

        $('detail-form').addEventListener('submit', submitDetail);

        // a message about the previous value goes once the field changes
        $('create-name').addEventListener('input', () => {
            setFieldError($('create-name'), 'create-name-error', '');
        });
        $('detail-name').addEventListener('input', () => {
            setFieldError($('detail-name'), 'detail-name-error', '');
            setText('detail-message', '');
        });
        $('detail-status').addEventListener('change', () => {
            setText('detail-message', '');
        });
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

        $('retry').addEventListener('click', () => {
            if (retryAction) {
                retryAction();
            }
        });

        // the secret is gone once the page is left, even from the
        // back/forward cache
        window.addEventListener('pagehide', forgetSecret);

        loadKeys();
    }

    start();
})();
