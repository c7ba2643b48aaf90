#!/usr/bin/env python3
"""bench/pg_cg.py N OUT.json: instructions per request (callgrind, as
bench/cg_only.py counts them) of the key check with the zone loaded from
SQLite and from PostgreSQL, the same N keys in both, in one run: issue 11's
"key-check cost per request identical to SQLite mode (within 1 %)".

The keys are bench.py's cache (bench/out/cache/N/keys.db, made by the CLI);
their rows are copied into a private PostgreSQL (t/lib/Projkey/Pg.pm, kept
alive by a perl child for the run) after `projkey --db URI init`, so both
zones hold the same keys and the same secrets are sent to both."""

import json
import os
import shutil
import sqlite3
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

sys.path.insert(0, HERE)

import bench  # noqa: E402
from bench import log  # noqa: E402

PG = r'''
use Projkey::Pg;
$| = 1;
my $pg = Projkey::Pg->new();
print join(' ', $pg->uri, $pg->dir, $pg->port), "\n";
<STDIN>;
'''

COLUMNS = ('id, project, name, hash, preview, status, created_by, '
           'created_at, updated_at, last_used_at, seq, expires_at, '
           'prev_hash, prev_preview, prev_expires_at')


def psql(pgdir, port, sql, stdin=None):
    subprocess.run(['runuser', '-u', 'postgres', '--', 'psql', '-X', '-q',
                    '-v', 'ON_ERROR_STOP=1', '-h', pgdir, '-p', str(port),
                    '-d', 'projkey', '-c', sql],
                   input=stdin, check=True, stdout=subprocess.DEVNULL)


def copy_keys(db, pgdir, port):
    """the SQLite file's keys into projkey.keys, the revision after them"""
    c = sqlite3.connect(db)
    rows = c.execute('SELECT %s FROM keys' % COLUMNS).fetchall()
    seq = c.execute("SELECT v FROM meta WHERE k = 'seq'").fetchone()[0]
    c.close()

    def field(v):
        if v is None:
            return r'\N'
        if isinstance(v, bytes):
            return r'\\x' + v.hex()
        return str(v).replace('\\', '\\\\').replace('\t', '\\t')

    data = ''.join('\t'.join(field(v) for v in r) + '\n' for r in rows)
    psql(pgdir, port, 'COPY projkey.keys (%s) FROM STDIN' % COLUMNS,
         stdin=data.encode())
    psql(pgdir, port, 'UPDATE projkey.revision SET value = %d; '
         'ANALYZE projkey.keys' % int(seq))
    return len(rows)


def main():
    n, out = int(sys.argv[1]), sys.argv[2]
    outdir = os.path.join(HERE, 'out')
    keys = bench.setup_keys(n, os.path.join(outdir, 'cache'), False)
    base = os.path.join(outdir, 'pg-cg-%d' % n)
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(base)

    pg = subprocess.Popen(['perl', '-I', os.path.join(bench.ROOT, 't', 'lib'),
                           '-e', PG], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True)
    uri, pgdir, port = pg.stdout.readline().split()
    R = {'n': n}

    class A:
        cg_counts = (1000, 3000)
        cg_variants = ['projkey']
        cg_all_below = 0

    try:
        subprocess.run([bench.CLI, '--db', uri, 'init'], check=True,
                       stdout=subprocess.DEVNULL)
        log('copying %d keys into PostgreSQL' % n)
        assert copy_keys(keys['db'], pgdir, port) == n

        zone = '%dm' % max(8, -(-n * 128 // 1048576))
        for engine, db in (('sqlite', None), ('postgresql', uri)):
            d = os.path.join(base, engine)
            os.makedirs(d)
            if db is None:
                db = os.path.join(d, 'keys.db')
                shutil.copyfile(keys['db'], db)
            extra = {'db': db, 'zone': zone,
                     'mapfile': os.path.join(d, 'map-keys.conf')}
            C = {}
            log('callgrind, zone from %s' % engine)
            bench.callgrind_all(C, n, d, keys, extra, A)
            R[engine] = C['callgrind']['projkey']
    finally:
        bench.cleanup()
        pg.stdin.close()
        pg.wait()

    with open(out, 'w') as f:
        json.dump(R, f, indent=1)

    for k in bench.KINDS:
        s, p = (R[e][k]['per_req_main_thread']
                for e in ('sqlite', 'postgresql'))
        print('%-10s event loop: sqlite %.0f  postgresql %.0f  (%+.2f%%)'
              % (k, s, p, 100.0 * (p - s) / s))


if __name__ == '__main__':
    main()
