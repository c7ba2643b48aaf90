#!/usr/bin/env python3
"""bench/scale.py: issue 14's scale figures at N keys (bench/README.md,
"Issue 14: 10,000,000 keys").

For each N (default 1,000,000 then 10,000,000, in the same run), projkey
only (plus `none` under callgrind), with bench.py's functions:

  start-up   spawn nginx (daemon off) -> first HTTP answer to a valid key;
             wall, and the CPU of master + worker by then (--starts, 2)
  zone       Rss of the zone's shared mapping in the master / N, and the
             smallest zone (MB) that loads all N keys, by bisection with
             nginx -t, / N
  reload     SIGHUP -> no old worker left and the new one answers; idle,
             median of --reloads (3); master CPU too
  callgrind  Ir per request of none and projkey for valid, unknown and
             malformed keys (bench.callgrind_all, 1,000 then 3,000 requests)

Keys: up to --cli-max (1,000,000) keys the CLI makes them, as bench.py does
(bench/out/cache/N/, the same cache).  Above, the CLI would need ~35 s per
million (3.6 min for 1,000,000 on this machine), so the database is made in
bench/out/cache/N/ as keys-sql.db:

  `projkey create b --count S` by the CLI (its secrets kept for the valid
  requests) in --batches (10) batches of S = 5,000, between which the
  other rows go in by SQL, each batch of rows with what the CLI's bulk
  create writes (id of 12 base62 characters, project default, name b-SEQ,
  hash 32 random bytes: a BLAKE2b-256 nobody sends, preview
  sk-project-...XXXX, status 1, created_by cli, created_at = updated_at =
  now, seq the next numbers, meta's seq moved on, one audit "create" row
  each); the CLI's keys are spread over the load order (the zone loads
  `SELECT ... FROM keys` in rowid order and links each key at the head of
  its bucket, so keys loaded first are last in a chain).  The search index
  triggers are dropped during the inserts and the index is then built from
  all the keys with the migration's own statement (one group per
  created_at and id prefix) and optimized, the triggers made again from
  their saved SQL.

    bench/scale.py                             # 1,000,000 and 10,000,000
    bench/scale.py --keys 10000000 --phases callgrind
    bench/scale.py --keys 1000000 --sql        # the SQL-made database at 1M
    bench/scale.py --tree /tmp/pk-old          # another build (before/after)

Results: bench/out/scale-results.json (each N's figures, merged over
runs by phase) and bench/out/scale-table.txt.
"""

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench  # noqa: E402
from bench import log  # noqa: E402

PHASES = ['startup', 'zone', 'reload', 'callgrind']


# --- the keys ---------------------------------------------------------------

def rand_b62(n):
    return ' || '.join(["substr('%s', 1 + abs(random() %% 62), 1)"
                        % bench.B62] * n)


def sql_rows(c, m):
    """m more keys by SQL, as the CLI's bulk create writes them"""
    seq = int(c.execute("SELECT v FROM meta WHERE k = 'seq'").fetchone()[0])
    now = int(time.time())
    c.execute(
        "WITH RECURSIVE c(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM c"
        " WHERE i < ?2)"
        " INSERT INTO keys (id, project, name, hash, preview, status,"
        " created_by, created_at, updated_at, last_used_at, seq, expires_at,"
        " prev_hash, prev_preview, prev_expires_at)"
        " SELECT %s, 'default', 'b-' || i, randomblob(32),"
        " 'sk-project-...' || %s, 1, 'cli', ?3, ?3, NULL, i, NULL, NULL,"
        " NULL, NULL FROM c" % (rand_b62(12), rand_b62(4)),
        (seq + 1, seq + m, now))
    c.execute(
        "INSERT INTO audit (at, project, key_id, action, actor, addr, detail)"
        " SELECT created_at, project, id, 'create', 'cli', NULL,"
        " json_object('name', name) FROM keys WHERE seq > ?1 ORDER BY seq",
        (seq,))
    c.execute("UPDATE meta SET v = ?1 WHERE k = 'seq'", (seq + m,))
    c.commit()


def store_source():
    with open(os.path.join(bench.ROOT, 'ngx_http_projkey_module',
                           'projkey_store_sqlite.c')) as f:
        return f.read()


def c_macro(src, name):
    """a #define of projkey_store_sqlite.c, its string literals joined (the
    macros it uses expanded); enough for the search index's statements"""
    m = re.search(r'^#define %s(\([^)]*\))?\s*((?:.*\\\n)*.*)$' % name,
                  src, re.M)
    return m.group(1), m.group(2).replace('\\\n', ' ')


def search_build_sql():
    """the migration's INSERT INTO keys_search ... FROM keys GROUP BY 1,
    taken from projkey_store_sqlite.c so that it cannot drift"""
    src = store_source()
    m = re.search(r'"INSERT INTO keys_search \(rowid, fproject, fname, ftail,'
                  r' fcreated,"\s*" fprefix\)"\s*" SELECT " '
                  r'PROJKEY_SEARCH_ROWID\("created_at", "id"\) ","'
                  r'((?:\s*(?:"[^"]*"|PROJKEY_SEARCH_TERM))*?)\s*'
                  r'" FROM keys GROUP BY 1;"', src)
    assert m, 'the search index migration statement was not found'

    def strings(s):
        return ''.join(re.findall(r'"((?:[^"\\]|\\.)*)"', s))
    term = strings(c_macro(src, 'PROJKEY_SEARCH_TERM')[1])
    b62 = strings(c_macro(src, 'PROJKEY_B62')[1])
    rowid = ('(-created_at * 916132832 - (((({d1} * 62 + {d2}) * 62 + {d3})'
             ' * 62 + {d4}) * 62 + {d5}))').format(**{
                 'd%d' % i: "(instr(%s, substr(id, %d, 1)) - 1)" % (b62, i)
                 for i in range(1, 6)})
    assert '916132832' in c_macro(src, 'PROJKEY_SEARCH_SPAN')[1]
    body = m.group(1).replace('PROJKEY_SEARCH_TERM', '"%s"' % term)
    return ('INSERT INTO keys_search (rowid, fproject, fname, ftail,'
            ' fcreated, fprefix) SELECT ' + rowid + ',' + strings(body)
            + ' FROM keys GROUP BY 1')


def make_sql_db(n, d, batches, per_batch):
    db = os.path.join(d, 'keys-sql.db')
    sample = os.path.join(d, 'sample-secrets.txt')
    for f in (db, db + '-wal', db + '-shm', sample):
        if os.path.exists(f):
            os.unlink(f)
    made = {'method': 'sql', 'batches': batches, 'cli_per_batch': per_batch}
    t0 = time.time()
    c0 = os.times()
    subprocess.run([bench.CLI, '--db', db, 'init'], check=True,
                   stdout=subprocess.DEVNULL)
    c = sqlite3.connect(db)
    c.execute('PRAGMA cache_size=-6000000')
    trig = c.execute("SELECT name, sql FROM sqlite_master WHERE type ="
                     " 'trigger' AND name LIKE 'keys_search_%'"
                     " ORDER BY name").fetchall()
    assert len(trig) == 3, trig
    for name, _ in trig:
        c.execute('DROP TRIGGER %s' % name)
    c.commit()
    c.close()
    rest = n - batches * per_batch
    done = 0
    for b in range(batches):
        c = sqlite3.connect(db)
        c.execute('PRAGMA cache_size=-6000000')
        m = rest // batches + (1 if b < rest % batches else 0)
        sql_rows(c, m)
        c.close()
        part = sample + '.%d' % b
        subprocess.run([bench.CLI, '--db', db, '--json', 'create', 'b',
                        '--count', str(per_batch), '--secrets', part],
                       check=True, stdout=subprocess.DEVNULL)
        with open(part) as f, open(sample, 'a') as o:
            o.write(f.read())
        os.unlink(part)
        done += m + per_batch
        log('N=%d: %d keys (%.0f s)' % (n, done, time.time() - t0))
    made['rows_s'] = time.time() - t0
    c = sqlite3.connect(db)
    c.execute('PRAGMA cache_size=-6000000')
    c.execute('INSERT OR IGNORE INTO projects (project)'
              ' SELECT DISTINCT project FROM keys')
    c.execute('DELETE FROM keys_search')
    c.execute(search_build_sql())
    c.execute("INSERT INTO keys_search (keys_search) VALUES ('optimize')")
    for _, sql in trig:
        c.execute(sql)
    c.commit()
    got = c.execute('SELECT count(*), max(seq), (SELECT v FROM meta WHERE'
                    " k = 'seq'), count(DISTINCT hash) FROM keys").fetchone()
    groups = c.execute('SELECT count(*) FROM keys_search').fetchone()[0]
    audit = c.execute('SELECT count(*) FROM audit').fetchone()[0]
    c.execute('PRAGMA wal_checkpoint(TRUNCATE)')
    c.close()
    assert got[0] == n and got[1] == n and int(got[2]) == n \
        and got[3] == n and audit == n, (got, audit)
    c1 = os.times()
    made.update({'total_s': time.time() - t0,
                 'search_s': time.time() - t0 - made['rows_s'],
                 'cpu_s': (c1.user + c1.system + c1.children_user
                           + c1.children_system) - (c0.user + c0.system
                                                     + c0.children_user
                                                     + c0.children_system),
                 'search_groups': groups,
                 'db_mb': os.path.getsize(db) / 1048576})
    open(os.path.join(d, 'complete-sql'), 'w').close()
    with open(os.path.join(d, 'made-sql.json'), 'w') as f:
        json.dump(made, f)
    log('N=%d: made by SQL in %.0f s (search index %.0f s), %.0f MB'
        % (n, made['total_s'], made['search_s'], made['db_mb']))
    return made


def setup(n, a):
    cache = os.path.join(a.out, 'cache')
    if n <= a.cli_max and not a.sql:
        keys = bench.setup_keys(n, cache, False)
        keys['made'] = {'method': 'cli', 'create_s': keys['create_s']}
        return keys
    d = os.path.join(cache, str(n))
    os.makedirs(d, exist_ok=True)
    if not os.path.exists(os.path.join(d, 'complete-sql')):
        log('N=%d: making the keys by SQL and the CLI (cached in %s)'
            % (n, d))
        make_sql_db(n, d, a.batches, a.per_batch)
    with open(os.path.join(d, 'made-sql.json')) as f:
        made = json.load(f)
    with open(os.path.join(d, 'sample-secrets.txt')) as f:
        known = f.read().split()
    assert len(known) == a.batches * a.per_batch
    keys = bench.key_files(d, n, known, False)
    keys.update({'db': os.path.join(d, 'keys-sql.db'), 'made': made})
    return keys


# --- the measurements ---------------------------------------------------------

def zone_rss(pid, zone_mb):
    zm = [s for s in bench.shm_mappings(pid) if s[0] >= zone_mb * 1024 - 64]
    return zm[0][1] if zm else None


def run_n(n, a, R):
    keys = setup(n, a)
    key = '%d%s' % (n, '-sql' if keys['made']['method'] == 'sql'
                    and n <= a.cli_max else '')
    if a.tree != bench.ROOT:
        key += '@' + os.path.basename(a.tree)
    res = R.setdefault(key, {})
    res.update({'n': n, 'made': keys['made'], 'tree': a.tree,
                'git_head': subprocess.run(
                    ['git', '-C', a.tree, 'rev-parse', '--short', 'HEAD'],
                    capture_output=True, text=True).stdout.strip()})
    base = os.path.join(a.out, 'scale-%s' % key)
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(base)
    db = os.path.join(base, 'keys.db')
    t0 = time.time()
    shutil.copyfile(keys['db'], db)
    log('N=%d: database copied (%.0f MB, %.0f s)'
        % (n, os.path.getsize(db) / 1048576, time.time() - t0))
    zone_mb = max(8, -(-n * 128 // 1048576))
    extra = {'mapfile': os.path.join(base, 'map-keys.conf'), 'db': db,
             'zone': '%dm' % zone_mb}
    res['zone_configured_mb'] = zone_mb
    probe = keys['sample'][0]
    port = bench.free_port()
    conf = bench.write_conf('projkey', os.path.join(base, 'projkey'), port, n,
                            keys, extra)
    inst = bench.Nginx('projkey', os.path.join(base, 'projkey'), conf, port,
                       probe)
    if 'startup' in a.phases or 'reload' in a.phases:
        starts = []
        for rep in range(a.starts):
            wall, cpu = inst.start()
            w = inst.worker()
            starts.append({'wall_s': wall, 'cpu_s': cpu,
                           'master_cpu_s': bench.cpu_ticks(inst.proc.pid)
                           / bench.CLK_TCK,
                           'worker_cpu_s': bench.cpu_ticks(w)
                           / bench.CLK_TCK})
            log('N=%d start: %.2f s (cpu %.2f s: master %.2f, worker %.2f)'
                % (n, wall, cpu, starts[-1]['master_cpu_s'],
                   starts[-1]['worker_cpu_s']))
            if rep < a.starts - 1:
                inst.stop()
        st = (bench.http_get(port, probe),
              bench.http_get(port, keys['unknown_keys'][0]),
              bench.http_get(port, keys['malformed_keys'][0]))
        if st[:2] != (200, 401):
            raise RuntimeError('valid -> %s, unknown -> %s' % st[:2])
        rss = zone_rss(inst.proc.pid, zone_mb)
        res['startup'] = {
            'runs': starts,
            'wall_s': bench.med([x['wall_s'] for x in starts]),
            'cpu_s': bench.med([x['cpu_s'] for x in starts]),
            'sanity': st,
            'master_rss_kb': bench.rss_kb(inst.proc.pid),
            'worker_rss_kb': bench.rss_kb(inst.worker()),
            'zone_rss_kb': rss,
            'zone_rss_bytes_per_key': rss * 1024 / n if rss else None}
        log('N=%d zone Rss %s KB = %.1f B/key' % (
            n, rss, res['startup']['zone_rss_bytes_per_key'] or 0))
        if 'reload' in a.phases:
            rl = []
            for _ in range(a.reloads):
                time.sleep(1)
                wall, mcpu = inst.reload()
                rl.append({'wall_s': wall, 'master_cpu_s': mcpu})
                log('N=%d reload: %.3f s (master cpu %.2f s)'
                    % (n, wall, mcpu))
            res['reload'] = {'runs': rl,
                             'wall_s': bench.med([x['wall_s'] for x in rl]),
                             'master_cpu_s': bench.med(
                                 [x['master_cpu_s'] for x in rl])}
        inst.stop()
    if 'zone' in a.phases:
        t0 = time.time()
        z = bench.zone_search(n, base, keys, extra)
        z['search_s'] = time.time() - t0
        res['zone'] = z
        log('N=%d smallest zone that loads: %s MB = %s B/key (%.0f s)' % (
            n, z.get('min_zone_mb'),
            bench.fmt(z.get('min_zone_bytes_per_key'), '%.1f'),
            z['search_s']))
    if 'callgrind' in a.phases:
        class A:
            cg_counts = (1000, 3000)
            cg_variants = a.cg_variants
            cg_all_below = 1000000
        t0 = time.time()
        C = {}
        bench.callgrind_all(C, n, base, keys, extra, A)
        res['callgrind'] = C['callgrind']
        res['callgrind_s'] = time.time() - t0
    save(R, a)


def save(R, a):
    with open(os.path.join(a.out, 'scale-results.json'), 'w') as f:
        json.dump(R, f, indent=1)


def table(R):
    cols = sorted(R, key=lambda k: (R[k]['n'], k))
    L = ['%-34s' % 'keys' + ''.join('%16s' % k for k in cols)]

    def row(name, f):
        vals = []
        for k in cols:
            try:
                v = f(R[k])
            except (KeyError, TypeError):
                v = None
            vals.append('%16s' % ('-' if v is None else v))
        L.append('%-34s' % name + ''.join(vals))
    row('made by', lambda r: r['made']['method'])
    row('start-up wall s (median)', lambda r: '%.2f' % r['startup']['wall_s'])
    row('start-up cpu s master+worker',
        lambda r: '%.2f' % r['startup']['cpu_s'])
    row('zone configured MB', lambda r: r['zone_configured_mb'])
    row('zone Rss B/key',
        lambda r: '%.1f' % r['startup']['zone_rss_bytes_per_key'])
    row('smallest zone MB',
        lambda r: r['zone']['min_zone_mb'])
    row('smallest zone B/key',
        lambda r: '%.1f' % r['zone']['min_zone_bytes_per_key'])
    row('reload wall s (median)', lambda r: '%.3f' % r['reload']['wall_s'])
    row('reload master cpu s', lambda r: '%.2f' % r['reload']['master_cpu_s'])
    for v in ('none', 'projkey'):
        for k in bench.KINDS:
            row('Ir/req %s %s' % (v, k),
                lambda r, v=v, k=k: '%.0f' % r['callgrind'][v][k]['per_req'])
            row('  event loop only',
                lambda r, v=v, k=k:
                '%.0f' % r['callgrind'][v][k]['per_req_main_thread'])
    return '\n'.join(L)


def main():
    ap = argparse.ArgumentParser(prog='bench/scale.py')
    ap.add_argument('--keys', type=int, action='append',
                    help='N (repeat; default 1000000 and 10000000)')
    ap.add_argument('--phases', default=','.join(PHASES),
                    help='comma list of ' + ','.join(PHASES))
    ap.add_argument('--starts', type=int, default=2)
    ap.add_argument('--reloads', type=int, default=3)
    ap.add_argument('--cg-variants', default='none,projkey')
    ap.add_argument('--cli-max', type=int, default=1000000,
                    help='largest N the CLI makes (above: SQL)')
    ap.add_argument('--sql', action='store_true',
                    help='the SQL-made database at every N')
    ap.add_argument('--batches', type=int, default=10)
    ap.add_argument('--per-batch', type=int, default=5000)
    ap.add_argument('--print', action='store_true')
    ap.add_argument('--tree', default=bench.ROOT,
                    help='the build tree whose module and CLI to run'
                    ' (an older commit\'s `git archive` with `make all`)')
    ap.add_argument('--out', default=os.path.join(HERE, 'out'))
    a = ap.parse_args()
    a.tree = os.path.abspath(a.tree)
    bench.MODULE = os.path.join(a.tree, 'build', 'ngx_http_projkey_module.so')
    bench.CLI = os.path.join(a.tree, 'build', 'projkey')
    a.keys = a.keys or [1000000, 10000000]
    a.phases = [p for p in a.phases.split(',') if p]
    a.cg_variants = [v for v in a.cg_variants.split(',') if v]
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, 'scale-results.json')
    R = {}
    if os.path.exists(path):
        with open(path) as f:
            R = json.load(f)
    if not a.print:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
        signal.signal(signal.SIGINT, lambda *_: sys.exit(1))
        try:
            for n in a.keys:
                R.setdefault('_runs', []).append({
                    'n': n, 'phases': a.phases,
                    'date': datetime.datetime.now().isoformat(
                        timespec='seconds'),
                    'load': os.getloadavg()})
                run_n(n, a, R)
        finally:
            bench.cleanup()
    runs = R.pop('_runs', None)
    t = table(R)
    if runs is not None:
        R['_runs'] = runs
    print(t)
    with open(os.path.join(a.out, 'scale-table.txt'), 'w') as f:
        f.write(t + '\n')


if __name__ == '__main__':
    main()
