#!/usr/bin/env python3
"""bench/cg_only.py N OUT.json [VARIANTS] [TREE]: only the callgrind phase
of bench/bench.py (instructions per request for valid, unknown and
malformed keys), without the results file --callgrind-only needs.
VARIANTS: comma list (default none,projkey); TREE: a build tree (default
this one), e.g. an older commit's `git archive` with `make all` run in it.
Keys are cached in bench/out/cache as bench/run does; callgrind's files
are left in bench/out/cg-only-N-NAME/callgrind/VARIANT/ for
callgrind_annotate (dumps .1/.2 valid, .3/.4 unknown, .5/.6 malformed)."""

import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

sys.path.insert(0, HERE)

import bench  # noqa: E402


def main():
    n, out = int(sys.argv[1]), sys.argv[2]
    variants = (sys.argv[3] if len(sys.argv) > 3 else 'none,projkey')
    tree = os.path.abspath(sys.argv[4] if len(sys.argv) > 4 else bench.ROOT)
    bench.MODULE = os.path.join(tree, 'build', 'ngx_http_projkey_module.so')
    bench.CLI = os.path.join(tree, 'build', 'projkey')
    outdir = os.path.join(HERE, 'out')
    keys = bench.setup_keys(n, os.path.join(outdir, 'cache'), False)
    base = os.path.join(outdir, 'cg-only-%d-%s' % (
        n, os.path.splitext(os.path.basename(out))[0]))
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(base)
    db = os.path.join(base, 'keys.db')
    shutil.copyfile(keys['db'], db)
    extra = {'mapfile': os.path.join(base, 'map-keys.conf'), 'db': db,
             'zone': '%dm' % max(8, -(-n * 128 // 1048576))}
    if 'map' in variants or 'auth_request' in variants:
        with open(keys['secrets']) as f, open(extra['mapfile'], 'w') as m:
            for line in f:
                m.write('"Bearer %s" 1;\n' % line.strip())

    class A:
        cg_counts = (1000, 3000)
        cg_variants = [v for v in variants.split(',') if v]
        cg_all_below = 1000000

    R = {'n': n, 'tree': tree}
    try:
        bench.callgrind_all(R, n, base, keys, extra, A)
    finally:
        bench.cleanup()
    with open(out, 'w') as f:
        json.dump(R, f, indent=1)
    for v, c in R['callgrind'].items():
        print('%-12s %s' % (v, '  '.join(
            '%s %.0f' % (k, c[k]['per_req']) for k in bench.KINDS)))


if __name__ == '__main__':
    main()
