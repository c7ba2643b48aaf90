#!/usr/bin/perl

# A PostgreSQL node at scale: N keys (default 1,000,000) written straight
# into a private PostgreSQL's projkey.keys (t/lib/Projkey/Pg.pm), then
#  - the start: nginx (one worker) from exec to answering, with the
#    master's load of every key (median of STARTS, default 3);
#  - a backlog of 10,000 changes committed at once (one UPDATE by hand,
#    a revision per key): from the commit until the running node has
#    applied the last of them (its projkey_revision metric);
#  - the start from snapshot= with the server stopped (median of STARTS).
#
#   bench/pg-scale.pl [N [STARTS]]

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../t/lib";

use Time::HiRes qw(sleep time);

use Projkey::Test;
use Projkey::Pg;

my $n = shift // 1_000_000;
my $starts = shift // 3;

my $pg = Projkey::Pg->new();
my $uri = $pg->uri;
my $t = Projkey::Test->new();

my ($rc, $out, $err) = $t->cli({ db => $uri }, 'init');
die "projkey init: $err" if $rc;

my $t0 = time;
$pg->psql(<<"EOF", db => 'projkey');
INSERT INTO projkey.keys (id, project, name, hash, preview, status,
    created_by, created_at, updated_at, seq)
SELECT substr(md5('i' || g), 1, 12), 'default', 'bench key ' || g,
    decode(md5(g::text) || md5((-g)::text), 'hex'),
    'sk-project-...' || substr(md5('p' || g), 1, 4), 1, 'bench',
    1790000000, 1790000000, g
FROM generate_series(1, $n) g;
UPDATE projkey.revision SET value = $n;
ANALYZE projkey.keys;
EOF
printf "%d keys written in %.1f s\n", $n, time - $t0;

# about 100 bytes a key in the zone, and its buckets: generous
my $zone = int($n * 200 / 1048576) + 16;

$t->write_config(<<"EOF");
worker_processes 1;

http {
    projkey_zone keys:${zone}m db=$uri sync=30s node=bench flush=1s
                 snapshot=%%TESTDIR%%/snap.db;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /metrics { projkey_metrics; }
        location /api/ { projkey keys; empty_gif; }
    }
}
EOF

my @start;

for (1 .. $starts) {
    my $s = time;
    $t->run();
    push @start, time - $s;
    $t->stop();
}

@start = sort { $a <=> $b } @start;
printf "start with %d keys: %s s (median %.2f s)\n", $n,
    join(', ', map { sprintf '%.2f', $_ } @start), $start[$#start / 2];

my ($loaded) = $t->error_log =~ /(\d+) keys loaded/;
print "the log says: $loaded keys loaded\n";

# the backlog

$t->run();

my $backlog = 10_000;
$t0 = time;
$pg->psql("UPDATE projkey.keys SET name = name || ' x' WHERE seq <= $backlog",
    db => 'projkey');
my $committed = time;
my $target = $n + $backlog;
my $rev;

while (time - $committed < 30) {
    ($rev) = $t->http("GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        =~ /^projkey_revision\{zone="keys"\} (\d+)/m;
    last if ($rev // 0) >= $target;
    sleep 0.005;
}

printf "backlog of %d changes: committed in %.2f s, applied %.3f s after "
    . "the commit (revision %s of %d)\n", $backlog, $committed - $t0,
    time - $committed, $rev // '?', $target;

# the snapshot of that revision, then starts from it alone

my $snap = $t->testdir . '/snap.db';
my $deadline = time + 120;
while (time < $deadline) {
    my (undef, $v) = $t->run_cmd('sqlite3', $snap,
        "SELECT v FROM meta WHERE k = 'revision'");
    last if ($v // 0) == $target;
    sleep 0.5;
}

$t->stop();
$pg->halt();

my @snap;
for (1 .. $starts) {
    my $s = time;
    $t->run();
    push @snap, time - $s;
    $t->stop();
}

@snap = sort { $a <=> $b } @snap;
printf "start from the snapshot (%d MB), the server stopped: %s s "
    . "(median %.2f s)\n", (-s $snap) / 1048576,
    join(', ', map { sprintf '%.2f', $_ } @snap), $snap[$#snap / 2];
print "the log says: ", ($t->error_log =~ /(started from snapshot [^,]*)/)[0]
    // 'nothing', "\n";

$pg->resume();
