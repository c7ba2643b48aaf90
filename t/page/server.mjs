// A private nginx for the API keys page tests: Debian's nginx with the
// projkey module, in a temporary directory, on free loopback ports.
//
//   const srv = await startServer();
//   srv.pageUrl      http://127.0.0.1:PORT/projkey/  (auth_basic: srv.user,
//                    srv.password; the page from <repo>/admin/, the admin
//                    API at /projkey/api/)
//   srv.apiUrl       http://127.0.0.1:PORT/api/  (needs a project key; the
//                    backend behind it answers 200 "ok")
//   srv.errorLog()   the error.log so far
//   await srv.stop() stops nginx and removes the directory (unless
//                    PROJKEY_TEST_KEEP is set)
//
// Options: startServer({ zone: '64m', db: PATH, node: 'gw-a',
// seed: async (dbPath) => ... }): the zone's size (default 4m), another
// SQLite file (one that several instances share), the zone's node= name,
// and a step run on the database before nginx starts (e.g. the CLI
// creating keys, which nginx then loads at start).
//
// The configuration follows examples/nginx.conf: the same headers and CSP
// on the page, the same admin location inside it.

import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync,
         writeFileSync, chmodSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const NGINX = process.env.PROJKEY_NGINX || '/usr/sbin/nginx';
const MODULE = process.env.PROJKEY_TEST_MODULE
    || join(ROOT, 'build', 'ngx_http_projkey_module.so');
export const CLI = process.env.PROJKEY_TEST_CLI || join(ROOT, 'build', 'projkey');

// the operator CLI on a database: its standard output
export function projkey(db, ...args) {
    return execFileSync(CLI, ['--db', db, ...args],
                        { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
}

export const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; "
    + "img-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
    + "base-uri 'none'; form-action 'self'";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
    return new Promise((resolvePort, reject) => {
        const s = createServer();
        s.on('error', reject);
        s.listen(0, '127.0.0.1', () => {
            const { port } = s.address();
            s.close(() => resolvePort(port));
        });
    });
}

function answers(port) {
    return new Promise((res) => {
        const c = connect({ host: '127.0.0.1', port }, () => {
            c.destroy();
            res(true);
        });
        c.on('error', () => res(false));
    });
}

function alive(pid) {
    try {
        process.kill(pid, 0);
    } catch {
        return false;
    }
    // a zombie is not alive
    try {
        return !/^\d+ \(.*\) Z/s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    } catch {
        return false;
    }
}

function config({ dir, port, backend, zone, db, node }) {
    const user = process.getuid && process.getuid() === 0 ? 'user root root;\n' : '';
    const temps = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
        .map((t) => `    ${t}_temp_path ${dir}/tmp/${t};\n`).join('');

    return `load_module ${MODULE};
${user}worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;

events {
    worker_connections 256;
}

http {
${temps}
    include /etc/nginx/mime.types;
    default_type application/octet-stream;

    access_log ${dir}/access.log;

    projkey_zone keys:${zone} db=${db} sync=200ms flush=1s${node ? ` node=${node}` : ''};

    server {
        listen 127.0.0.1:${port};
        server_name localhost;

        location /api/ {
            projkey keys;
            proxy_pass http://127.0.0.1:${backend};
        }

        location /projkey/ {
            auth_basic           "projkey admin";
            auth_basic_user_file ${dir}/htpasswd;

            alias ${ROOT}/admin/;
            index index.html;

            add_header Content-Security-Policy "${CSP}" always;
            add_header X-Frame-Options        DENY always;
            add_header Referrer-Policy        no-referrer always;
            add_header X-Content-Type-Options nosniff always;
            add_header Cache-Control          no-store always;

            location ~ \\.[ch]$ {
                return 404;
            }

            location /projkey/api/ {
                projkey_admin         keys;
                projkey_admin_user    $remote_user;
                projkey_admin_project default;
            }
        }
    }

    server {
        listen 127.0.0.1:${backend};
        server_name backend;

        default_type text/plain;

        location / {
            return 200 "ok";
        }
    }
}
`;
}

export async function startServer(options = {}) {
    for (const f of [NGINX, MODULE]) {
        if (!existsSync(f)) {
            throw new Error(`${f} is missing: run make first`);
        }
    }

    const dir = mkdtempSync(join(tmpdir(), 'projkey-page-'));
    chmodSync(dir, 0o755);
    mkdirSync(join(dir, 'tmp'));

    const zone = options.zone || '4m';
    const db = options.db || join(dir, 'keys.db');
    const node = options.node;
    if (options.seed) {
        await options.seed(db);
    }

    const user = 'admin';
    const password = randomBytes(12).toString('base64url');
    const hash = execFileSync('openssl', ['passwd', '-apr1', '-stdin'],
        { input: `${password}\n`, encoding: 'utf8' }).trim();
    writeFileSync(join(dir, 'htpasswd'), `${user}:${hash}\n`, { mode: 0o600 });

    let port;
    let backend;
    let master;

    // a port found free may be taken by a parallel test before nginx binds
    // it: then try new ones
    for (let attempt = 1; ; attempt++) {
        port = await freePort();
        do {
            backend = await freePort();
        } while (backend === port);

        writeFileSync(join(dir, 'nginx.conf'), config({ dir, port, backend, zone, db, node }));
        rmSync(join(dir, 'nginx.pid'), { force: true });

        const { code, output } = await new Promise((res) => {
            const p = spawn(NGINX, ['-p', `${dir}/`, '-c', `${dir}/nginx.conf`,
                                    '-e', `${dir}/error.log`],
                            { stdio: ['ignore', 'pipe', 'pipe'] });
            let out = '';
            p.stdout.on('data', (d) => { out += d; });
            p.stderr.on('data', (d) => { out += d; });
            p.on('close', (c) => res({ code: c, output: out }));
        });

        if (code === 0) {
            break;
        }
        const log = existsSync(join(dir, 'error.log'))
            ? readFileSync(join(dir, 'error.log'), 'utf8') : '';
        if (attempt < 3 && /Address already in use/.test(output + log)) {
            continue;
        }
        throw new Error(`nginx failed to start (exit ${code}):\n${output}\n${log}`);
    }

    const deadline = Date.now() + 10000;
    while (!master) {
        try {
            const m = readFileSync(join(dir, 'nginx.pid'), 'utf8').match(/\d+/);
            if (m) master = Number(m[0]);
        } catch { /* not yet */ }
        if (!master) {
            if (Date.now() > deadline) throw new Error('nginx wrote no pid file');
            await sleep(50);
        }
    }
    for (const p of [port, backend]) {
        while (!(await answers(p))) {
            if (Date.now() > deadline || !alive(master)) {
                throw new Error(`nginx does not answer on port ${p}`);
            }
            await sleep(50);
        }
    }

    const base = `http://127.0.0.1:${port}`;

    return {
        dir,
        db,
        user,
        password,
        base,
        pageUrl: `${base}/projkey/`,
        apiUrl: `${base}/api/`,
        errorLog() {
            try {
                return readFileSync(join(dir, 'error.log'), 'utf8');
            } catch {
                return '';
            }
        },
        async stop() {
            if (master && alive(master)) {
                process.kill(master, 'SIGQUIT');
                for (const sig of ['SIGTERM', 'SIGKILL']) {
                    const until = Date.now() + 10000;
                    while (alive(master) && Date.now() < until) await sleep(50);
                    if (!alive(master)) break;
                    process.kill(master, sig);
                }
            }
            master = undefined;
            if (!process.env.PROJKEY_TEST_KEEP) {
                rmSync(dir, { recursive: true, force: true });
            }
        },
    };
}
