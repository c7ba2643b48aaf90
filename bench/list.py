#!/usr/bin/env python3
"""bench/list.py: what a page of GET keys costs at N keys (bench/README.md).

For each N (default 10,000 then 1,000,000 keys in project "default", plus
N/10 in project "other"), one nginx (Debian's, worker_processes 1) with the
module and an admin location; over one keep-alive connection, each case is
requested R times (after a warm-up) and timed at the client:

  first page        GET keys                         (limit 100)
  deep page         GET keys?after=C, C the cursor half way down the chain
  search 3+ common  GET keys?q=billing               (a name word, ~1 in 10)
  search 3+ rare    GET keys?q=-NNNNN-               (one key's number)
  search 1-2 dense  GET keys?q=e                     (most names)
  search 1-2 rare   GET keys?q=zq                    (no name: the bounded scan)
  status disabled   GET keys?status=disabled         (~1 in 20)
  status+search     GET keys?status=disabled&q=billing

The keys are made once with SQL (cached in bench/out/cache/list-N/): the
schema of `projkey init`, the search index and its triggers dropped and the
rows inserted in one statement, then `projkey migrate`, which builds the
search index of the keys the way an upgraded database gets it (merged into
one segment).  With --incremental (list-inc-N/) the rows go in through the
triggers instead, 10,000 a transaction, and the search index is left as
FTS5's automerge leaves it: the index of a database that grew batch by
batch and was never merged (the CLI's create --count merges at its end).

Standard library only; loopback only; nginx is stopped at exit.

    bench/list.py                       # N = 10,000 and 1,000,000
    bench/list.py --keys 10000 --requests 200
    bench/list.py --incremental --keys 1000000
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
NGINX = os.environ.get('PROJKEY_NGINX', '/usr/sbin/nginx')
MODULE = os.path.join(ROOT, 'build', 'ngx_http_projkey_module.so')
CLI = os.path.join(ROOT, 'build', 'projkey')
B62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
WORDS = ['billing', 'search', 'ingest', 'mobile', 'ci', 'staging', 'prod',
         'analytics', 'etl', 'webhook']
BASE = 1700000000

procs = []


def log(*a):
    print('[list %s]' % time.strftime('%H:%M:%S'), *a, file=sys.stderr,
          flush=True)


def cleanup(*_):
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGQUIT)
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def pct(xs, p):
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


# --- the keys -----------------------------------------------------------

def rand_b62(n):
    return ' || '.join(["substr('%s', 1 + abs(random() %% 62), 1)" % B62] * n)


def insert_sql(project, n, first):
    """n keys of project in one INSERT: names "<word>-<env>-<i>", 1 in 20
    disabled, 3 keys a second, 20 s apart (ties broken by id)"""
    word = 'CASE abs(random()) %% 10 %s END' % ' '.join(
        "WHEN %d THEN '%s'" % (i, w) for i, w in enumerate(WORDS))
    return (
        "WITH RECURSIVE c(i) AS (SELECT %d UNION ALL SELECT i + 1 FROM c"
        " WHERE i < %d)"
        " INSERT INTO keys (id, project, name, hash, preview, status,"
        " created_by, created_at, updated_at, last_used_at, seq)"
        " SELECT %s, '%s', %s || '-' || CASE i %% 3 WHEN 0 THEN 'eu'"
        " WHEN 1 THEN 'us' ELSE 'ap' END || '-' || i || '-', randomblob(32),"
        " 'sk-project-...' || %s,"
        " CASE WHEN abs(random()) %% 20 = 0 THEN 2 ELSE 1 END, 'bench',"
        " %d + (i / 3) * 20, %d + (i / 3) * 20, NULL, i FROM c"
        % (first, first + n - 1, rand_b62(12), project, word, rand_b62(4),
           BASE, BASE))


def setup_db(n, cache, incremental):
    d = os.path.join(cache, 'list-%s%d' % ('inc-' if incremental else '', n))
    db = os.path.join(d, 'keys.db')
    if os.path.exists(os.path.join(d, 'complete')):
        return db, None
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    log('making %d keys (cached in %s)' % (n, d))
    t0 = time.time()
    subprocess.run([CLI, '--db', db, 'init'], check=True,
                   stdout=subprocess.DEVNULL)
    if incremental:
        c = sqlite3.connect(db)
        c.execute('PRAGMA cache_size=-262144')
        for i in range(0, n, 10000):
            c.execute(insert_sql('default', min(10000, n - i), i + 1))
            c.commit()
        c.execute(insert_sql('other', n // 10, n + 1))
        c.execute("UPDATE meta SET v = %d WHERE k = 'seq'" % (n + n // 10))
        c.commit()
        c.close()
        open(os.path.join(d, 'complete'), 'w').close()
        made = {'insert_s': time.time() - t0, 'migrate_s': 0,
                'db_mb': os.path.getsize(db) / 1048576}
        log('made %d keys through the triggers in %.1f s, %.0f MB'
            % (n, made['insert_s'], made['db_mb']))
        return db, made
    c = sqlite3.connect(db)
    c.executescript(
        'DROP TRIGGER keys_search_insert; DROP TRIGGER keys_search_update;'
        ' DROP TRIGGER keys_search_delete; DROP TABLE keys_search;'
        ' PRAGMA user_version=2; PRAGMA cache_size=-262144;')
    c.execute(insert_sql('default', n, 1))
    c.execute(insert_sql('other', n // 10, n + 1))
    c.execute("UPDATE meta SET v = %d WHERE k = 'seq'" % (n + n // 10))
    c.commit()
    c.close()
    t1 = time.time()
    subprocess.run([CLI, '--db', db, 'migrate'], check=True,
                   stdout=subprocess.DEVNULL)
    t2 = time.time()
    open(os.path.join(d, 'complete'), 'w').close()
    made = {'insert_s': t1 - t0, 'migrate_s': t2 - t1,
            'db_mb': os.path.getsize(db) / 1048576}
    log('made %d keys: insert %.1f s, migrate (search index) %.1f s, '
        '%.0f MB' % (n, made['insert_s'], made['migrate_s'], made['db_mb']))
    return db, made


# --- nginx ----------------------------------------------------------------

def start_nginx(d, db, n):
    os.makedirs(d, exist_ok=True)
    port = free_port()
    zone = '%dm' % max(4, (n * 11 // 10) * 192 // 1048576 + 4)
    conf = os.path.join(d, 'nginx.conf')
    with open(conf, 'w') as f:
        f.write(
            'load_module %s;\nuser root root;\nworker_processes 1;\n'
            'daemon off;\npid %s/nginx.pid;\nerror_log %s/error.log error;\n'
            'events { worker_connections 1024; }\n'
            'http {\n    access_log off;\n    keepalive_requests 10000000;\n'
            '%s'
            '    projkey_zone keys:%s db=%s;\n'
            '    server {\n        listen 127.0.0.1:%d;\n'
            '        location /admin/ {\n            projkey_admin keys;\n'
            '            projkey_admin_user $http_x_user;\n'
            '        }\n    }\n}\n'
            % (MODULE, d, d,
               ''.join('    %s_temp_path %s/%s_temp;\n' % (t, d, t)
                       for t in ('client_body', 'proxy', 'fastcgi', 'uwsgi',
                                 'scgi')),
               zone, db, port))
    p = subprocess.Popen([NGINX, '-p', d, '-c', conf])
    procs.append(p)
    for _ in range(600):
        try:
            socket.create_connection(('127.0.0.1', port), 0.1).close()
            return p, port
        except OSError:
            time.sleep(0.05)
    raise SystemExit('nginx did not start: see %s/error.log' % d)


class Client:
    def __init__(self, port):
        self.c = http.client.HTTPConnection('127.0.0.1', port, timeout=30)

    def get(self, query):
        t0 = time.perf_counter()
        self.c.request('GET', '/admin/keys' + ('?' + query if query else ''),
                       headers={'X-User': 'bench'})
        r = self.c.getresponse()
        body = r.read()
        dt = time.perf_counter() - t0
        if r.status != 200:
            raise SystemExit('GET keys?%s: %d %s' % (query, r.status, body))
        return json.loads(body), dt, len(body)


def deep_cursor(cl, n):
    """the cursor half way down the chain, walked 1000 keys a page"""
    after, seen = None, 0
    while seen < n // 2:
        j, _, _ = cl.get('limit=1000' + ('&after=' + after if after else ''))
        seen += len(j['keys'])
        after = j['next']
    return after


def cases(cl, n, db):
    c = sqlite3.connect(db)
    # one key's number, as a name part: matches that key (and no other)
    rare = c.execute("SELECT name FROM keys WHERE project = 'default'"
                     " AND seq = ?", (n * 7 // 10,)).fetchone()[0]
    c.close()
    rare = '-' + rare.split('-')[2] + '-'
    q = urllib.parse.quote
    return [
        ('first page', ''),
        ('deep page', 'after=' + deep_cursor(cl, n)),
        ('search 3+ common', 'q=billing'),
        ('search 3+ rare', 'q=' + q(rare)),
        ('search 1-2 dense', 'q=e'),
        ('search 1-2 rare', 'q=zq'),
        ('status disabled', 'status=disabled'),
        ('status+search', 'status=disabled&q=billing'),
    ]


def run(n, a, out):
    db, made = setup_db(n, os.path.join(HERE, 'out', 'cache'),
                        a.incremental)
    d = os.path.join(HERE, 'out', 'list-run-%d' % n)
    shutil.rmtree(d, ignore_errors=True)
    p, port = start_nginx(d, db, n)
    cl = Client(port)
    res = {'n': n, 'made': made, 'cases': {}}
    try:
        for name, query in cases(cl, n, db):
            for _ in range(a.warmup):
                cl.get(query)
            ts, keys, size, nxt = [], 0, 0, None
            for _ in range(a.requests):
                j, dt, size = cl.get(query)
                ts.append(dt)
                keys, nxt = len(j['keys']), j['next']
            res['cases'][name] = {
                'query': query if len(query) < 60 else query[:57] + '...',
                'p50_ms': pct(ts, 50) * 1e3, 'p99_ms': pct(ts, 99) * 1e3,
                'max_ms': max(ts) * 1e3, 'keys': keys,
                'next': nxt is not None, 'bytes': size}
            log('%7d %-17s p50 %6.2f p99 %6.2f ms, %d keys%s' % (
                n, name, res['cases'][name]['p50_ms'],
                res['cases'][name]['p99_ms'], keys,
                ', next' if nxt else ''))
    finally:
        p.send_signal(signal.SIGQUIT)
        p.wait(10)
    out.append(res)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--keys', type=int, action='append')
    ap.add_argument('--requests', type=int, default=500)
    ap.add_argument('--warmup', type=int, default=20)
    ap.add_argument('--incremental', action='store_true')
    a = ap.parse_args()
    a.keys = a.keys or [10000, 1000000]
    for f in (NGINX, MODULE, CLI):
        if not os.path.exists(f):
            raise SystemExit('%s is missing: run make first' % f)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    out = []
    try:
        for n in a.keys:
            run(n, a, out)
    finally:
        cleanup()
    os.makedirs(os.path.join(HERE, 'out'), exist_ok=True)
    tag = '-inc' if a.incremental else ''
    with open(os.path.join(HERE, 'out', 'list-results%s.json' % tag),
              'w') as f:
        json.dump(out, f, indent=1)
    names = list(out[0]['cases'])
    head = '%-17s' % 'case' + ''.join(
        '  %9s p50    p99' % ('%d' % r['n']) for r in out)
    if len(out) > 1:
        head += '   p50 x   p99 x'
    lines = [head]
    for name in names:
        line = '%-17s' % name
        for r in out:
            c = r['cases'][name]
            line += '  %9s %5.2f %6.2f' % ('(%d%s)' % (
                c['keys'], '+' if c['next'] else ''), c['p50_ms'],
                c['p99_ms'])
        if len(out) > 1:
            f, l = out[0]['cases'][name], out[-1]['cases'][name]
            line += '   %5.2f   %5.2f' % (l['p50_ms'] / f['p50_ms'],
                                         l['p99_ms'] / f['p99_ms'])
        lines.append(line)
    lines.append('ms at the client, one keep-alive connection, %d requests '
                 'a case; (keys on the page, + if next)' % a.requests)
    table = '\n'.join(lines)
    with open(os.path.join(HERE, 'out', 'list-table%s.txt' % tag),
              'w') as f:
        f.write(table + '\n')
    print(table)


if __name__ == '__main__':
    main()
