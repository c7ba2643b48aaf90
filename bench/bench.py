#!/usr/bin/env python3
"""bench/run: projkey side by side with what an operator would do instead.

Variants (one nginx each, worker_processes 1, every response from the content
phase with empty_gif; see bench/README.md):
  none          no check (the ceiling)
  map           map $http_authorization of the N keys, 401 for unknown
  lua           lua_shared_dict of the N key strings filled in init_by_lua,
                checked in access_by_lua_block
  auth_request  auth_request -> keepalive upstream -> a second nginx (map)
  projkey       the module, the same N keys loaded from SQLite

Standard library only.  Loopback only; every nginx is stopped at exit.
"""

import argparse
import datetime
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
NGINX = os.environ.get('PROJKEY_NGINX', '/usr/sbin/nginx')
MODULE = os.path.join(ROOT, 'build', 'ngx_http_projkey_module.so')
CLI = os.path.join(ROOT, 'build', 'projkey')
LUA_MODS = ['/usr/lib/nginx/modules/ndk_http_module.so',
            '/usr/lib/nginx/modules/ngx_http_lua_module.so']
CLK_TCK = os.sysconf('SC_CLK_TCK')
VARIANTS = ['none', 'map', 'lua', 'auth_request', 'projkey']
KINDS = ['valid', 'unknown', 'malformed']
B62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'

procs = []          # every nginx / valgrind we started
# nginx's default error_log level for every variant: projkey logs each
# rejected request at notice, which a notice level would write (and count)
a_log_level = os.environ.get('BENCH_ERROR_LOG_LEVEL', 'error')


def log(*a):
    print('[bench %s]' % time.strftime('%H:%M:%S'), *a, file=sys.stderr,
          flush=True)


def cleanup(*_):
    for p in procs:
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGQUIT)
            except ProcessLookupError:
                pass
    t = time.time() + 10
    for p in procs:
        try:
            p.wait(max(0.1, t - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --- /proc ------------------------------------------------------------------

def cpu_ticks(pid):
    """utime+stime of a process, in clock ticks"""
    with open('/proc/%d/stat' % pid) as f:
        rest = f.read().rsplit(')', 1)[1].split()
    return int(rest[11]) + int(rest[12])


def main_thread_ticks(pid):
    """utime+stime of the main thread (the event loop) only"""
    with open('/proc/%d/task/%d/stat' % (pid, pid)) as f:
        rest = f.read().rsplit(')', 1)[1].split()
    return int(rest[11]) + int(rest[12])


def children(pid):
    out = []
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % d) as f:
                rest = f.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        if int(rest[1]) == pid and rest[0] != 'Z':
            out.append(int(d))
    return sorted(out)


def rss_kb(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    return 0


def shm_mappings(pid):
    """[(size_kb, rss_kb)] of the /dev/zero (deleted) shared mappings"""
    res, cur = [], None
    with open('/proc/%d/smaps' % pid) as f:
        for line in f:
            if re.match(r'^[0-9a-f]+-[0-9a-f]+ ', line):
                cur = None
                if '/dev/zero' in line or 'SYSV' in line:
                    cur = [0, 0]
                    res.append(cur)
            elif cur is not None and line.startswith('Size:'):
                cur[0] = int(line.split()[1])
            elif cur is not None and line.startswith('Rss:'):
                cur[1] = int(line.split()[1])
    return [tuple(x) for x in res]


# --- keys -------------------------------------------------------------------

def crc_b62(s):
    import zlib
    c = zlib.crc32(s.encode())
    out = ''
    while c:
        c, r = divmod(c, 62)
        out = B62[r] + out
    return out.rjust(6, '0')


def setup_keys(n, cache, quick):
    """keys.db + secrets.txt with n keys (cached), plus the key files wrk and
    the callgrind client cycle through."""
    d = os.path.join(cache, str(n))
    os.makedirs(d, exist_ok=True)
    db, secrets = os.path.join(d, 'keys.db'), os.path.join(d, 'secrets.txt')
    created = None
    if not (os.path.exists(db) and os.path.exists(secrets)
            and os.path.exists(os.path.join(d, 'complete'))):
        for f in (db, secrets, db + '-wal', db + '-shm'):
            if os.path.exists(f):
                os.unlink(f)
        log('creating %d keys with the CLI (cached in %s)' % (n, d))
        t0 = time.time()
        subprocess.run([CLI, '--db', db, '--json', 'create', 'b', '--count',
                        str(n), '--secrets', secrets], check=True,
                       stdout=subprocess.DEVNULL)
        created = time.time() - t0
        open(os.path.join(d, 'complete'), 'w').close()
        log('created %d keys in %.1f s' % (n, created))
    with open(secrets) as f:
        keys = f.read().split()
    assert len(keys) == n, (len(keys), n)
    r = key_files(d, n, keys, quick)
    r.update({'db': db, 'secrets': secrets, 'create_s': created})
    return r


def key_files(d, n, keys, quick):
    """valid.txt, malformed.txt and unknown.txt (made by the CLI) in d, from
    the known secrets of a database of n keys (all of them when the CLI made
    it; bench/scale.py's databases know a sample only)"""
    unknown = os.path.join(d, 'unknown.txt')
    if not os.path.exists(unknown):
        tmp = os.path.join(d, 'throwaway')
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        subprocess.run([CLI, '--db', os.path.join(tmp, 'x.db'), '--json',
                        'create', 'u', '--count', str(min(n, 20000)),
                        '--secrets', unknown], check=True,
                       stdout=subprocess.DEVNULL)
        shutil.rmtree(tmp)
    rnd = random.Random(n)
    sample = rnd.sample(keys, min(len(keys), 5000 if quick else 50000))
    valid = os.path.join(d, 'valid.txt')
    with open(valid, 'w') as f:
        f.write('\n'.join(sample) + '\n')
    # malformed: a valid key with its checksum broken (right length and
    # alphabet, wrong CRC) - hashed, looked up, and on the miss the
    # checksum tells malformed from unknown
    mal = os.path.join(d, 'malformed.txt')
    with open(mal, 'w') as f:
        for k in sample[:20000]:
            body = k[:-6]
            good = k[-6:]
            bad = good[:-1] + B62[(B62.index(good[-1]) + 1) % 62]
            f.write(body + bad + '\n')
    with open(unknown) as f:
        unk = f.read().split()
    # a check of the checksum scheme the spec gives (so "unknown" keys are
    # well-formed and "malformed" are not)
    wellformed = sum(crc_b62(k[:-6]) == k[-6:] for k in sample[:100])
    with open(mal) as f:
        malk = f.read().split()
    return {'valid': valid, 'unknown': unknown, 'malformed': mal,
            'malformed_keys': malk, 'sample': sample, 'unknown_keys': unk,
            'crc_check': wellformed}


# --- configurations ---------------------------------------------------------

def map_block(var, keys_file, n):
    # map keys are compared case-insensitively by nginx (lower-cased)
    return ('    map_hash_max_size %d;\n    map_hash_bucket_size 1024;\n'
            '    map $http_authorization %s {\n        default 0;\n'
            '        include %s;\n    }\n' % (max(n + 2048, 11000), var,
                                            keys_file))


def write_conf(v, d, port, n, keys, extra, cg=False):
    """nginx.conf of variant v in directory d"""
    os.makedirs(d, exist_ok=True)
    mods, http, loc, more = '', '', '', ''
    if v == 'lua':
        mods = ''.join('load_module %s;\n' % m for m in LUA_MODS)
        http = ('    lua_shared_dict pkeys %dm;\n'
                '    init_by_lua_block {\n'
                '        local d = ngx.shared.pkeys\n'
                '        local n = 0\n'
                '        for line in io.lines("%s") do\n'
                '            local ok, err = d:safe_set(line, true)\n'
                '            if not ok then error("lua_shared_dict: " .. err) end\n'
                '            n = n + 1\n'
                '        end\n'
                '        ngx.log(ngx.NOTICE, n, " keys loaded")\n'
                '    }\n' % (max(8, n * 256 // 1048576 + 8), keys['secrets']))
        loc = ('            access_by_lua_block {\n'
               '                local h = ngx.var.http_authorization\n'
               '                if h == nil or h:sub(1, 7) ~= "Bearer "\n'
               '                   or not ngx.shared.pkeys:get(h:sub(8)) then\n'
               '                    return ngx.exit(401)\n'
               '                end\n'
               '            }\n')
    elif v in ('map', 'auth_svc'):
        http = map_block('$pk_ok', extra['mapfile'], n)
        if v == 'map':
            loc = '            if ($pk_ok = 0) { return 401; }\n'
    elif v == 'auth_request':
        http = ('    upstream authsvc {\n        server 127.0.0.1:%d;\n'
                '        keepalive 32;\n    }\n' % extra['auth_port'])
        loc = '            auth_request /_auth;\n'
        more = ('        location = /_auth {\n            internal;\n'
                '            proxy_pass http://authsvc/check;\n'
                '            proxy_http_version 1.1;\n'
                '            proxy_set_header Connection "";\n'
                '            proxy_pass_request_body off;\n'
                '            proxy_set_header Content-Length "";\n'
                '        }\n')
    elif v in ('projkey', 'loaded'):
        # "loaded": projkey's zone, thread pool and timers, no key check:
        # what the module's presence costs a request it does not check
        mods = 'load_module %s;\n' % MODULE
        http = '    projkey_zone keys:%s db=%s;\n' % (extra['zone'],
                                                      extra['db'])
        loc = '            projkey keys;\n' if v == 'projkey' else ''
        more = ('        location /admin/ {\n            projkey_admin keys;\n'
                '            projkey_admin_user $http_x_user;\n        }\n')
    if v == 'auth_svc':
        server = ('        location = /check {\n'
                  '            if ($pk_ok = 0) { return 401; }\n'
                  '            return 204;\n        }\n')
    else:
        server = ('        location / {\n%s            empty_gif;\n'
                  '        }\n%s' % (loc, more))
    conf = (
        '%suser root root;\nworker_processes 1;\ndaemon off;\n'
        'master_process %s;\npid %s/nginx.pid;\nerror_log %s/error.log %s;\n'
        'worker_rlimit_nofile 8192;\n'
        'events { worker_connections 4096; }\n'
        'http {\n    access_log off;\n    keepalive_requests 10000000;\n'
        '    keepalive_timeout 60s;\n'
        '%s'
        '%s'
        '    server {\n        listen 127.0.0.1:%d backlog=4096;\n%s    }\n}\n'
        % (mods, 'off' if cg else 'on', d, d,
           a_log_level,
           ''.join('    %s_temp_path %s/%s_temp;\n' % (t, d, t)
                   for t in ('client_body', 'proxy', 'fastcgi', 'uwsgi',
                             'scgi')),
           http, port, server))
    path = os.path.join(d, 'nginx-cg.conf' if cg else 'nginx.conf')
    with open(path, 'w') as f:
        f.write(conf)
    return path


def http_get(port, key, timeout=1.0):
    """one GET / with the key; returns the status or None"""
    try:
        c = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
        c.request('GET', '/check' if key is None else '/',
                  headers={'Authorization': 'Bearer %s' % (key or 'x')})
        r = c.getresponse()
        r.read()
        c.close()
        return r.status
    except (OSError, http.client.HTTPException):
        return None


class Nginx:
    def __init__(self, name, d, conf, port, probe_key):
        self.name, self.d, self.conf, self.port = name, d, conf, port
        self.probe_key = probe_key
        self.proc = None

    def start(self, timeout=600):
        """start, wait for the first HTTP answer; return (wall s, cpu s)"""
        t0 = time.time()
        self.proc = subprocess.Popen([NGINX, '-p', self.d + '/', '-c',
                                      self.conf],
                                     stdin=subprocess.DEVNULL,
                                     stderr=open(os.path.join(
                                         self.d, 'stderr.log'), 'a'))
        procs.append(self.proc)
        while time.time() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError('%s: nginx exited (%s), see %s/error.log'
                                   % (self.name, self.proc.returncode,
                                      self.d))
            if http_get(self.port, self.probe_key, 0.5) is not None:
                wall = time.time() - t0
                cpu = sum(cpu_ticks(p) for p in
                          [self.proc.pid] + self.workers()) / CLK_TCK
                return wall, cpu
            time.sleep(0.005)
        raise RuntimeError('%s: no answer after %d s' % (self.name, timeout))

    def workers(self):
        return children(self.proc.pid)

    def worker(self):
        w = self.workers()
        assert len(w) == 1, (self.name, w)
        return w[0]

    def reload(self, timeout=600):
        """HUP; time until the old worker is gone and a new one answers"""
        old = set(self.workers())
        m0 = cpu_ticks(self.proc.pid)
        t0 = time.time()
        self.proc.send_signal(signal.SIGHUP)
        while time.time() - t0 < timeout:
            now = set(self.workers())
            if now and not (now & old):
                if http_get(self.port, self.probe_key, 0.5) is not None:
                    return (time.time() - t0,
                            (cpu_ticks(self.proc.pid) - m0) / CLK_TCK)
            time.sleep(0.005)
        raise RuntimeError('%s: reload did not finish' % self.name)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --- load -------------------------------------------------------------------

def wrk(port, keyfile, duration, conns, threads=1, timeout_s=None):
    cmd = ['wrk', '-t%d' % threads, '-c%d' % conns, '-d%ds' % duration,
           '--latency', '--timeout', '5s', '-s', os.path.join(HERE, 'keys.lua'),
           'http://127.0.0.1:%d/' % port, '--', keyfile]
    out = subprocess.run(cmd, capture_output=True, text=True,
                         timeout=duration + 60)
    m = re.search(r'^WRKJSON (.*)$', out.stdout, re.M)
    if not m:
        raise RuntimeError('wrk: no result: %s %s' % (out.stdout, out.stderr))
    r = json.loads(m.group(1))
    r['rps'] = r['requests'] / (r['duration_us'] / 1e6)
    return r


def measure_round(inst, v, kind, keys, duration, conns):
    """one wrk run; worker CPU before/after (auth service worker added)"""
    pids = [inst[v].worker()]
    if v == 'auth_request':
        pids.append(inst['auth_svc'].worker())
    c0 = [cpu_ticks(p) for p in pids]
    m0 = main_thread_ticks(pids[0])
    r = wrk(inst[v].port, keys[kind], duration, conns)
    c1 = [cpu_ticks(p) for p in pids]
    r['cpu_main_thread_s'] = (main_thread_ticks(pids[0]) - m0) / CLK_TCK
    r['cpu_s'] = sum(b - a for a, b in zip(c0, c1)) / CLK_TCK
    r['cpu_front_s'] = (c1[0] - c0[0]) / CLK_TCK
    return r


# --- callgrind --------------------------------------------------------------

def client(port, keys, count, path='/'):
    """count sequential GETs on one keep-alive connection; returns statuses"""
    st = {}
    c = http.client.HTTPConnection('127.0.0.1', port, timeout=120)
    for i in range(count):
        c.request('GET', path, headers={
            'Authorization': 'Bearer ' + keys[i % len(keys)]})
        r = c.getresponse()
        r.read()
        st[r.status] = st.get(r.status, 0) + 1
    c.close()
    return st


def cg_total(f):
    with open(f) as fh:
        for line in fh:
            if line.startswith('totals:') or line.startswith('summary:'):
                return int(line.split()[1])
    raise RuntimeError('no totals in ' + f)


def callgrind_variant(v, base, n, keys, extra, counts):
    """instructions per request for valid and unknown keys: instrumentation
    switched on once the port answers (startup not instrumented), then
    dumps after counts[0] and counts[1] requests: (Ir2 - Ir1)/(c2 - c1)"""
    names = [v] + (['auth_svc'] if v == 'auth_request' else [])
    running = {}
    try:
        for name in reversed(names):        # auth service first
            d = os.path.join(base, name)
            port = free_port()
            ex = dict(extra)
            if name == 'auth_request':
                ex['auth_port'] = running['auth_svc'][1]
            conf = write_conf(name, d, port, n, keys, ex, cg=True)
            for f in os.listdir(d):
                if f.startswith('cg.'):
                    os.unlink(os.path.join(d, f))
            p = subprocess.Popen(
                ['valgrind', '--tool=callgrind', '--instr-atstart=no',
                 '--separate-threads=yes',
                 '--callgrind-out-file=%s/cg.%%p' % d, NGINX, '-p', d + '/',
                 '-c', conf], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=open(os.path.join(d, 'valgrind.log'), 'w'))
            procs.append(p)
            t0 = time.time()
            while http_get(port, None if name == 'auth_svc'
                           else keys['sample'][0], 2) is None:
                if p.poll() is not None or time.time() - t0 > 900:
                    raise RuntimeError('callgrind %s did not start' % name)
                time.sleep(0.2)
            running[name] = (p, port, d)
        for name in names:
            subprocess.run(['callgrind_control', '-i', 'on',
                            str(running[name][0].pid)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = running[v][1]
        res = {}
        seq = 0
        for kind, klist in (('valid', keys['sample'][3:]),
                            ('unknown', keys['unknown_keys']),
                            ('malformed', keys['malformed_keys'])):
            irs, mains = [], []
            off = 0
            for cnt in counts:
                # fresh keys in each window, as in wrk's cycle
                st = client(port, klist[off:] + klist[:off], cnt)
                off = (off + cnt) % len(klist)
                seq += 1
                tot = main = 0
                for name in names:
                    p, _, d = running[name]
                    subprocess.run(['callgrind_control', '-d',
                                    str(p.pid)], check=True,
                                   stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
                    for f in os.listdir(d):
                        m = re.match(r'cg\.%d\.%d-(\d+)$' % (p.pid, seq), f)
                        if m:
                            ir = cg_total(os.path.join(d, f))
                            tot += ir
                            if int(m.group(1)) == 1:
                                main += ir
                irs.append(tot)
                mains.append(main)
            dc = counts[1] - counts[0]
            res[kind] = {'ir': irs, 'ir_main_thread': mains, 'status': st,
                         'per_req': (irs[1] - irs[0]) / dc,
                         'per_req_main_thread': (mains[1] - mains[0]) / dc}
        return res
    finally:
        for name in names:
            if name in running:
                p = running[name][0]
                p.send_signal(signal.SIGQUIT)
                try:
                    p.wait(60)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


# --- admin ------------------------------------------------------------------

class Admin:
    def __init__(self, port):
        self.c = http.client.HTTPConnection('127.0.0.1', port, timeout=30)

    def call(self, method, path, body):
        t0 = time.perf_counter()
        self.c.request(method, '/admin/' + path, body=json.dumps(body),
                       headers={'Content-Type': 'application/json',
                                'X-User': 'bench'})
        r = self.c.getresponse()
        data = r.read()
        return r.status, data, time.perf_counter() - t0


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return None
    k = (len(xs) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def admin_latency(port, count):
    a = Admin(port)
    ids, tc, td, bad = [], [], [], {}
    for i in range(count):
        st, data, dt = a.call('POST', 'keys', {'name': 'a%d' % i})
        if st != 201:
            bad[st] = bad.get(st, 0) + 1
            continue
        ids.append(json.loads(data)['key']['id'])
        tc.append(dt)
    for kid in ids:
        st, data, dt = a.call('PATCH', 'keys/' + kid, {'status': 'disabled'})
        if st != 200:
            bad[st] = bad.get(st, 0) + 1
            continue
        td.append(dt)
    ms = lambda xs: {'n': len(xs), 'p50_ms': pct(xs, 50) * 1e3,
                     'p99_ms': pct(xs, 99) * 1e3, 'max_ms': max(xs) * 1e3}
    return {'create': ms(tc), 'disable': ms(td), 'errors': bad}


def admin_writer(port, stop, stats):
    a = Admin(port)
    i = 0
    while not stop.is_set():
        st, data, _ = a.call('POST', 'keys', {'name': 'w%d' % i})
        i += 1
        stats['ops'] += 1
        if st == 201:
            kid = json.loads(data)['key']['id']
            st, _, _ = a.call('PATCH', 'keys/' + kid, {'status': 'disabled'})
            stats['ops'] += 1
        if st not in (200, 201):
            stats['errors'] += 1


# --- main -------------------------------------------------------------------

def fmt(x, f='%.0f'):
    return '-' if x is None else f % x


def run_n(n, a, out):
    R = {'n': n, 'date': datetime.datetime.now().isoformat(timespec='seconds'),
         'error_log_level': a_log_level,
         'git_head': subprocess.run(['git', '-C', ROOT, 'rev-parse',
                                     '--short', 'HEAD'], capture_output=True,
                                    text=True).stdout.strip(),
         'command': ' '.join(['bench/run'] + sys.argv[1:]),
         'rounds': a.rounds, 'duration_s': a.duration,
         'connections': a.connections, 'nproc': os.cpu_count()}
    keys = setup_keys(n, os.path.join(out, 'cache'), a.quick)
    if a.callgrind_only:
        path = os.path.join(out, 'results-%d.json' % n)
        with open(path) as f:
            R = json.load(f)
        base = os.path.join(out, 'run-%d' % n)
        extra = {'mapfile': os.path.join(base, 'map-keys.conf'),
                 'db': os.path.join(base, 'keys.db'),
                 'zone': R['zone_configured']}
        callgrind_all(R, n, base, keys, extra, a)
        R['callgrind_command'] = ' '.join(['bench/run'] + sys.argv[1:])
        summarize(R)
        with open(path, 'w') as f:
            json.dump(R, f, indent=1)
        log('updated ' + path)
        return R
    R['cli_create_s'] = keys['create_s']
    base = os.path.join(out, 'run-%d' % n)
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(base)
    mapfile = os.path.join(base, 'map-keys.conf')
    with open(keys['secrets']) as f, open(mapfile, 'w') as m:
        for line in f:
            m.write('"Bearer %s" 1;\n' % line.strip())
    db = os.path.join(base, 'keys.db')
    shutil.copyfile(keys['db'], db)
    zone_mb = max(8, -(-n * 128 // 1048576))
    extra = {'mapfile': mapfile, 'db': db, 'zone': '%dm' % zone_mb}
    R['zone_configured'] = extra['zone']

    # instances: the auth service first (auth_request's upstream)
    inst = {}
    order = ['auth_svc'] + VARIANTS
    for v in order:
        port = free_port()
        ex = dict(extra)
        if v == 'auth_request':
            ex['auth_port'] = inst['auth_svc'].port
        conf = write_conf(v, os.path.join(base, v), port, n, keys, ex)
        inst[v] = Nginx(v, os.path.join(base, v), conf, port,
                        None if v == 'auth_svc' else keys['sample'][0])

    # start-up: 3 starts each (all but the last stopped again)
    R['startup'] = {v: [] for v in order}
    for rep in range(a.starts):
        for v in order:
            wall, cpu = inst[v].start()
            R['startup'][v].append({'wall_s': wall, 'cpu_s': cpu})
            log('N=%d start %s: %.2f s (cpu %.2f s)' % (n, v, wall, cpu))
            if rep < a.starts - 1 and v != 'auth_svc':
                inst[v].stop()
        if rep < a.starts - 1:
            inst['auth_svc'].stop()
    for v in VARIANTS:
        st = http_get(inst[v].port, keys['sample'][0])
        st2 = http_get(inst[v].port, keys['unknown_keys'][0])
        R.setdefault('sanity', {})[v] = [st, st2]
        if v != 'none' and (st != 200 or st2 != 401):
            raise RuntimeError('%s: valid key -> %s, unknown -> %s'
                               % (v, st, st2))

    # memory after start-up
    def memory():
        m = {}
        for v in order:
            w = inst[v].worker()
            m[v] = {'master_rss_kb': rss_kb(inst[v].proc.pid),
                    'worker_rss_kb': rss_kb(w),
                    'shm_master': shm_mappings(inst[v].proc.pid),
                    'shm_worker': shm_mappings(w)}
        return m
    R['memory_start'] = memory()

    # the interleaved load rounds
    files = {k: keys[k] for k in KINDS}
    R['load'] = {v: {k: [] for k in KINDS} for v in VARIANTS}
    kinds = KINDS
    for rnd in range(a.rounds):
        for kind in kinds:
            for v in VARIANTS:
                r = measure_round(inst, v, kind, files, a.duration,
                                  a.connections)
                R['load'][v][kind].append(r)
                log('N=%d round %d %-9s %-12s %8.0f req/s p99 %6d us '
                    'cpu %.2f us/req non2xx %d' % (
                        n, rnd + 1, kind, v, r['rps'], r['p99'],
                        r['cpu_s'] / max(1, r['requests']) * 1e6,
                        r['status']))
    R['memory_loaded'] = memory()

    # reload: idle (time), then under load (failed requests)
    R['reload'] = {}
    for v in VARIANTS:
        times = []
        for _ in range(2):
            wall, mcpu = inst[v].reload()
            times.append({'wall_s': wall, 'master_cpu_s': mcpu})
            time.sleep(0.3)
        res = {}
        box = {}

        def hup(v=v):
            time.sleep(a.duration / 3)
            old = set(inst[v].workers())
            inst[v].proc.send_signal(signal.SIGHUP)
            t0 = time.time()
            while set(inst[v].workers()) & old and time.time() - t0 < 60:
                time.sleep(0.01)
            box['done_s'] = time.time() - t0
        th = threading.Thread(target=hup)
        th.start()
        r = wrk(inst[v].port, keys['valid'], max(3, a.duration),
                a.connections)
        th.join()
        time.sleep(0.3)
        res = {'requests': r['requests'], 'non2xx': r['status'],
               'socket_errors': r['connect'] + r['read'] + r['write']
               + r['timeout'], 'old_worker_gone_s': box.get('done_s'),
               'errors': {e: r[e] for e in ('connect', 'read', 'write',
                                            'timeout')},
               'p99_us': r['p99']}
        R['reload'][v] = {'idle': times, 'under_load': res}
        log('N=%d reload %s: %.2f s; under load: %d requests, %d non-2xx, '
            '%d socket errors' % (n, v, times[-1]['wall_s'], r['requests'],
                                  res['non2xx'], res['socket_errors']))

    # projkey zone: smallest size that loads, Rss of the zone mapping
    pk = inst['projkey']
    zm = [s for s in shm_mappings(pk.proc.pid)
          if s[0] >= zone_mb * 1024 - 64]
    R['zone'] = {'configured_mb': zone_mb,
                 'master_zone_rss_kb': zm[0][1] if zm else None}
    R['zone']['rss_bytes_per_key'] = (zm[0][1] * 1024 / n) if zm else None
    if not a.quick or a.zone_search:
        R['zone'].update(zone_search(n, base, keys, extra))

    # admin API latency, then key-check p99 idle vs during admin writes
    R['admin'] = admin_latency(pk.port, a.admin_count)
    log('N=%d admin create p99 %.2f ms, disable p99 %.2f ms' % (
        n, R['admin']['create']['p99_ms'], R['admin']['disable']['p99_ms']))
    pairs = []
    for _ in range(a.rounds):
        idle = wrk(pk.port, keys['valid'], a.duration, a.connections)
        stop = threading.Event()
        stats = {'ops': 0, 'errors': 0}
        th = threading.Thread(target=admin_writer,
                              args=(pk.port, stop, stats))
        th.start()
        time.sleep(0.2)
        busy = wrk(pk.port, keys['valid'], a.duration, a.connections)
        stop.set()
        th.join()
        pairs.append({'idle_p99_us': idle['p99'], 'busy_p99_us': busy['p99'],
                      'idle_rps': idle['rps'], 'busy_rps': busy['rps'],
                      'busy_non2xx': busy['status'],
                      'admin_ops': stats['ops'],
                      'admin_errors': stats['errors']})
        log('N=%d key p99 idle %d us, during admin writes %d us (%d admin '
            'ops)' % (n, idle['p99'], busy['p99'], stats['ops']))
    R['admin_under_writes'] = pairs

    for v in order:
        inst[v].stop()

    # instructions per request
    if not a.no_callgrind:
        callgrind_all(R, n, base, keys, extra, a)
    summarize(R)
    path = os.path.join(out, 'results-%d.json' % n)
    with open(path, 'w') as f:
        json.dump(R, f, indent=1)
    log('wrote ' + path)
    return R


def callgrind_all(R, n, base, keys, extra, a):
    R['callgrind'] = {}
    R['callgrind_counts'] = list(a.cg_counts)
    cgbase = os.path.join(base, 'callgrind')
    variants = [v for v in VARIANTS
                if v in a.cg_variants or
                (not a.cg_variants and (n < a.cg_all_below
                                        or v in ('none', 'projkey')))]
    variants += [v for v in ('loaded',) if v in a.cg_variants]
    for v in variants:
        log('N=%d callgrind %s' % (n, v))
        R['callgrind'][v] = callgrind_variant(
            v, cgbase, n, keys, extra, a.cg_counts)
        c = R['callgrind'][v]
        log('N=%d callgrind %s: Ir/req valid %.0f (event loop %.0f), '
            'unknown %.0f (%.0f), malformed %.0f (%.0f)' % (
                n, v, c['valid']['per_req'],
                c['valid']['per_req_main_thread'], c['unknown']['per_req'],
                c['unknown']['per_req_main_thread'],
                c['malformed']['per_req'],
                c['malformed']['per_req_main_thread']))


def zone_search(n, base, keys, extra):
    """smallest zone (MB) that loads all n keys, by nginx -t"""
    d = os.path.join(base, 'zone-search')
    port = free_port()

    def loads(mb):
        ex = dict(extra, zone='%dm' % mb)
        conf = write_conf('projkey', d, port, n, keys, ex)
        r = subprocess.run([NGINX, '-t', '-p', d + '/', '-c', conf],
                           capture_output=True, text=True)
        return r.returncode == 0
    lo, hi = 1, max(8, -(-n * 256 // 1048576))
    if not loads(hi):
        return {'min_zone_mb': None}
    while lo + 1 < hi:
        mid = (lo + hi) // 2
        if loads(mid):
            hi = mid
        else:
            lo = mid
    return {'min_zone_mb': hi, 'min_zone_bytes_per_key': hi * 1048576 / n}


def med(xs):
    return statistics.median(xs) if xs else None


def summarize(R):
    S = {}
    for v in VARIANTS:
        for k in KINDS:
            rs = R['load'][v][k]
            req = sum(r['requests'] for r in rs)
            S.setdefault(v, {})[k] = {
                'rps': med([r['rps'] for r in rs]),
                'p50_us': med([r['p50'] for r in rs]),
                'p99_us': med([r['p99'] for r in rs]),
                'cpu_us_per_req': sum(r['cpu_s'] for r in rs) / req * 1e6,
                'cpu_us_per_req_rounds': [r['cpu_s'] / r['requests'] * 1e6
                                          for r in rs],
                'non2xx': sum(r['status'] for r in rs),
                'requests': req}
            cg = R.get('callgrind', {}).get(v, {}).get(k)
            S[v][k]['ir_per_req'] = cg['per_req'] if cg else None
            S[v][k]['ir_per_req_main_thread'] = \
                cg.get('per_req_main_thread') if cg else None
            S[v][k]['cpu_main_thread_us_per_req'] = (
                sum(r.get('cpu_main_thread_s', 0) for r in rs) / req * 1e6
                if all('cpu_main_thread_s' in r for r in rs) else None)
        st = R['startup'][v]
        S[v]['startup_wall_s'] = med([x['wall_s'] for x in st])
        S[v]['startup_cpu_s'] = med([x['cpu_s'] for x in st])
        S[v]['reload_wall_s'] = med([x['wall_s'] for x in
                                     R['reload'][v]['idle']])
        m = R['memory_loaded']
        S[v]['master_rss_mb'] = m[v]['master_rss_kb'] / 1024
        S[v]['worker_rss_mb'] = m[v]['worker_rss_kb'] / 1024
        if v == 'auth_request':
            S[v]['master_rss_mb'] += m['auth_svc']['master_rss_kb'] / 1024
            S[v]['worker_rss_mb'] += m['auth_svc']['worker_rss_kb'] / 1024
            st2 = R['startup']['auth_svc']
            S[v]['startup_wall_s'] = (S[v]['startup_wall_s'],
                                      med([x['wall_s'] for x in st2]))
    R['summary'] = S
    return S


def table(R):
    S = R['summary']
    n = R['n']
    L = []
    L.append('N = %d keys, %d rounds x %d s, %d connections, wrk -t1, '
             'worker_processes 1, %s' % (n, R['rounds'], R['duration_s'],
                                         R['connections'], R['date']))
    L.append('%-12s %-9s %9s %6s %7s %7s %8s %6s %8s %6s %8s %6s %6s' % (
        'variant', 'keys', 'req/s', 'x none', 'p50 us', 'p99 us',
        'cpu us/r', 'x none', 'Ir/req', 'x none', 'Ir loop', 'x none',
        'non2xx'))
    for k in KINDS:
        base = S['none'][k]
        for v in VARIANTS:
            s = S[v][k]
            ir = s['ir_per_req']
            bir = base['ir_per_req']
            il = s.get('ir_per_req_main_thread')
            bil = base.get('ir_per_req_main_thread')
            L.append('%-12s %-9s %9.0f %6.2f %7.0f %7.0f %8.2f %6.2f %8s '
                     '%6s %8s %6s %6s' % (
                         v, k, s['rps'], s['rps'] / base['rps'], s['p50_us'],
                         s['p99_us'], s['cpu_us_per_req'],
                         s['cpu_us_per_req'] / base['cpu_us_per_req'],
                         fmt(ir), '-' if ir is None or not bir else
                         '%.3f' % (ir / bir), fmt(il),
                         '-' if il is None or not bil else '%.3f' % (il / bil),
                         s['non2xx']))
    L.append('')
    L.append('%-12s %10s %10s %10s %11s %11s %s' % (
        'variant', 'start s', 'start cpu', 'reload s', 'master MB',
        'worker MB', 'reload under load: non2xx/socket errors of requests'))
    for v in VARIANTS:
        s = S[v]
        sw = s['startup_wall_s']
        sws = ('%.2f' % sw) if not isinstance(sw, (tuple, list)) else \
            '%.2f+%.2f' % tuple(sw)
        rl = R['reload'][v]['under_load']
        L.append('%-12s %10s %10.2f %10.2f %11.1f %11.1f %d/%d of %d' % (
            v, sws, s['startup_cpu_s'], s['reload_wall_s'],
            s['master_rss_mb'], s['worker_rss_mb'], rl['non2xx'],
            rl['socket_errors'], rl['requests']))
    z = R['zone']
    L.append('')
    L.append('projkey zone: configured %s; master Rss of the zone mapping '
             '%s KB = %s B/key; smallest zone that loads: %s MB = %s B/key'
             % (R['zone_configured'], z.get('master_zone_rss_kb'),
                fmt(z.get('rss_bytes_per_key'), '%.1f'),
                z.get('min_zone_mb', '-'),
                fmt(z.get('min_zone_bytes_per_key'), '%.1f')))
    ad = R['admin']
    L.append('admin API at %d keys: create p50 %.2f p99 %.2f max %.2f ms; '
             'disable p50 %.2f p99 %.2f max %.2f ms (%d each, errors %s)' % (
                 n, ad['create']['p50_ms'], ad['create']['p99_ms'],
                 ad['create']['max_ms'], ad['disable']['p50_ms'],
                 ad['disable']['p99_ms'], ad['disable']['max_ms'],
                 ad['create']['n'], ad['errors'] or 0))
    pr = R['admin_under_writes']
    L.append('key-check p99 idle vs during admin writes: ' + ', '.join(
        '%d/%d us (x%.2f, %d admin ops)' % (
            p['idle_p99_us'], p['busy_p99_us'],
            p['busy_p99_us'] / p['idle_p99_us'], p['admin_ops'])
        for p in pr) + '; median ratio x%.2f' % med(
        [p['busy_p99_us'] / p['idle_p99_us'] for p in pr]))
    if R.get('cli_create_s'):
        L.append('CLI: %d keys created in %.1f s' % (n, R['cli_create_s']))
    return '\n'.join(L)


def main():
    ap = argparse.ArgumentParser(prog='bench/run')
    ap.add_argument('--keys', type=int, action='append',
                    help='N keys (repeat for several; default 100000 '
                         'and 1000000)')
    ap.add_argument('--quick', action='store_true',
                    help='N=10000, 2 rounds of 2 s: a smoke run')
    ap.add_argument('--rounds', type=int)
    ap.add_argument('--duration', type=int, help='seconds per wrk run')
    ap.add_argument('--connections', type=int, default=32)
    ap.add_argument('--no-callgrind', action='store_true')
    ap.add_argument('--callgrind-only', action='store_true',
                    help='redo only the callgrind phase into the existing '
                         'results-N.json')
    ap.add_argument('--zone-search', action='store_true',
                    help='find the smallest zone also with --quick')
    ap.add_argument('--cg-variants', default='',
                    help='comma list of variants for callgrind (default: '
                         'all below 1000000 keys, none and projkey from '
                         '1000000 keys: nginx under valgrind needs minutes '
                         'to parse a map of 1M keys)')
    ap.add_argument('--starts', type=int, help='start-ups per variant')
    ap.add_argument('--print', action='store_true',
                    help='print the table of the existing results-N.json')
    ap.add_argument('--out', default=os.path.join(HERE, 'out'))
    a = ap.parse_args()
    a.cg_variants = [v for v in a.cg_variants.split(',') if v]
    a.cg_all_below = 1000000
    if a.quick:
        a.keys = a.keys or [10000]
        a.rounds = a.rounds or 2
        a.duration = a.duration or 2
        a.cg_counts = (200, 600)
        a.admin_count = 50
        a.starts = a.starts or 1
    else:
        a.keys = a.keys or [100000, 1000000]
        a.rounds = a.rounds or 3
        a.duration = a.duration or 4
        a.cg_counts = (1000, 3000)
        a.admin_count = 200
        a.starts = a.starts or 2
    os.makedirs(a.out, exist_ok=True)
    if a.print:
        for n in a.keys:
            with open(os.path.join(a.out, 'results-%d.json' % n)) as f:
                print(table(json.load(f)) + '\n')
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(1))
    try:
        tables = []
        for n in a.keys:
            R = run_n(n, a, a.out)
            t = table(R)
            print(t + '\n', flush=True)
            tables.append(t)
        with open(os.path.join(a.out, 'table.txt'), 'w') as f:
            f.write('\n\n'.join(tables) + '\n')
    finally:
        cleanup()


if __name__ == '__main__':
    main()
