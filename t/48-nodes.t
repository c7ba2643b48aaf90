#!/usr/bin/perl

# projkey: GET nodes and the revision of writes.  Two nginx instances
# (node=gw-a, node=gw-b) on one SQLite file: both are listed, and after a
# write answered with revision N both report N within a couple of sync
# intervals, not at the next 5 s heartbeat.  A node unseen for 60 s is
# stale (its last_seen written back with sqlite3, nginx stopped); node=
# errors; a database that cannot be written fails the heartbeat, logged
# once, and key checks go on.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep time);

use Projkey::Test;
use Projkey::Admin;

###############################################################################

my $t = Projkey::Test->new()->plan(52);
my $t2 = Projkey::Test->new();

my $conf = <<'EOF';
http {
    projkey_zone keys:4m db=%%DB%% sync=300ms node=%%NODE%%;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /admin/ {
            projkey_admin         keys;
            projkey_admin_user    $http_x_user;
            projkey_admin_project default;
        }

        location /api/ {
            projkey keys;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
            proxy_set_header X-Name $projkey_key_name;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;
        return 200 "ok $http_x_name\n";
    }
}

EOF

my $db = $t->db;

for ([$t, 'gw-a'], [$t2, 'gw-b']) {
    my ($n, $name) = @$_;
    (my $c = $conf) =~ s/%%DB%%/$db/;
    $c =~ s/%%NODE%%/$name/;
    $n->write_config($c)->run();
}

my $a = Projkey::Admin->new($t, user => 'alice');
my $b = Projkey::Admin->new($t2, user => 'bob');

my $time_re = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

###############################################################################

# both nodes listed, with the database's revision

my $r = wait_nodes($a, 5, sub { keys %{$_[0]} == 2 });
is($r->{status}, 200, 'GET nodes: 200');
is($r->{headers}{'cache-control'}, 'no-store', 'GET nodes: no-store');
like($r->{headers}{'content-type'}, qr{^application/json},
    'GET nodes: JSON');
is(join(',', sort keys %{$r->{json}}), 'nodes,revision',
    'GET nodes: revision, nodes');
is(join(',', map { $_->{node} } @{$r->{json}{nodes}}), 'gw-a,gw-b',
    'both nodes listed, by name');
is($r->{json}{revision}, db_revision(), 'revision: the database counter');

my $n = $r->{json}{nodes}[0];
is(join(',', sort keys %$n), 'last_seen,node,revision,stale,zone',
    'a node: node, revision, last_seen, stale, zone');
like($n->{last_seen}, $time_re, 'last_seen: RFC 3339 UTC');
ok(defined $n->{stale} && !$n->{stale} && ref $n->{stale},
    'stale: false, a JSON boolean');
is(join(',', sort keys %{$n->{zone}}), 'keys,size_bytes,used_bytes',
    'zone: keys, used_bytes, size_bytes');
is($n->{zone}{size_bytes}, 4 * 1024 * 1024, 'size_bytes: the zone size');
ok($n->{zone}{used_bytes} > 0 && $n->{zone}{used_bytes} < 4 * 1024 * 1024,
    "used_bytes: within the zone ($n->{zone}{used_bytes})");
is($n->{zone}{keys}, 0, 'keys: none yet');

is($b->call('GET', 'nodes')->{body}, $r->{body},
    'B lists the same nodes') or diag($b->call('GET', 'nodes')->{body});

# a write on A answers revision N; both nodes have it soon

my $before = db_revision();
$r = $a->call('POST', 'keys', { name => 'first' });
is($r->{status}, 201, 'POST keys on A: 201');
my $rev = $r->{json}{revision};
is($rev, $before + 1, 'POST: revision, the write\'s change sequence');
my $secret = $r->{json}{secret};
my $id = $r->{json}{key}{id};

my $start = time;
$r = wait_nodes($a, 5, sub { !grep { $_->{revision} < $rev } values %{$_[0]} });
my $took = time - $start;
my %by = map { $_->{node} => $_ } @{$r->{json}{nodes}};
ok($by{'gw-a'}{revision} >= $rev && $by{'gw-b'}{revision} >= $rev,
    "both nodes at revision >= $rev");
cmp_ok($took, '<', 2.5, sprintf('within a couple of sync intervals '
    . '(%.2f s), not at the 5 s heartbeat', $took));
is($by{'gw-b'}{zone}{keys}, 1, 'B counts the key in its zone');
like($t2->get('/api/', Authorization => "Bearer $secret"), qr/ 200 .*first/s,
    'and accepts it');

# PATCH and DELETE answer their revisions, which only grow

$r = $b->call('PATCH', "keys/$id", { name => 'renamed' });
is($r->{status}, 200, 'PATCH on B: 200');
is($r->{json}{revision}, $rev + 1, 'PATCH: the next revision');
$rev = $r->{json}{revision};

$r = $b->call('PATCH', "keys/$id", { name => 'renamed' });
is($r->{json}{revision}, $rev, 'PATCH changing nothing: the current one');

my ($cid) = $t->create_key('by the CLI');
$r = $b->call('PATCH', "keys/$id", { name => 'renamed' });
is($r->{json}{revision}, $rev + 1,
    'PATCH changing nothing after a CLI change: the current one');
$rev = $r->{json}{revision};

$r = $a->call('DELETE', "keys/$cid");
is($r->{status}, 204, 'DELETE on A: 204');
is($r->{headers}{'x-projkey-revision'}, $rev + 1,
    'DELETE: X-Projkey-Revision, the next revision');
$rev = $r->{headers}{'x-projkey-revision'};
is(db_revision(), $rev, 'the revision is the database counter');

# the answer's revision is applied on this node when the answer comes,
# also a change another process made just before (A's sync is 300 ms)

my ($did, $dsecret, $caught);

for my $i (1 .. 5) {
    ($did, $dsecret) = $t->create_key("disabled by the CLI $i");
    $t->wait_for(3, sub { $t->get('/api/', Authorization => "Bearer $dsecret")
        =~ / 200 / });
    $t->cli('disable', $did);
    $r = $a->call('PATCH', "keys/$id", { name => "renamed $i" });
    last unless $r->{status} == 200 && $r->{json}{revision} == db_revision();
    $caught++ if $t->get('/api/', Authorization => "Bearer $dsecret")
        =~ /"api_key_disabled"/;
}

is($caught, 5, 'a PATCH right after a CLI disable, 5 times: the CLI\'s '
    . 'change is in A\'s zone when the answer comes');

# GET nodes: only GET

$r = $a->call('POST', 'nodes', { name => 'x' });
is(Projkey::Admin::code($r), 'method_not_allowed', 'POST nodes: 405');
is($r->{headers}{allow}, 'GET', 'Allow: GET');
is($a->call('HEAD', 'nodes')->{status}, 200, 'HEAD nodes: 200');

# a node unseen for 60 s is stale: B stopped, its last heartbeat made old

$t2->done();
sqlite("UPDATE nodes SET last_seen = strftime('%s', 'now') - 61"
    . " WHERE name = 'gw-b'");
$r = $a->call('GET', 'nodes');
%by = map { $_->{node} => $_ } @{$r->{json}{nodes}};
ok($by{'gw-b'}{stale}, 'B unseen for 61 s: stale');
ok(!$by{'gw-a'}{stale}, 'A: not stale');
is(scalar @{$r->{json}{nodes}}, 2, 'a stale node is still listed');

sqlite("UPDATE nodes SET last_seen = strftime('%s', 'now') - 59"
    . " WHERE name = 'gw-b'");
$r = $a->call('GET', 'nodes');
%by = map { $_->{node} => $_ } @{$r->{json}{nodes}};
ok(!$by{'gw-b'}{stale}, 'B unseen for 59 s: not stale');

# the CLI lists the nodes too

my ($rc, $out) = $t->cli('nodes');
is($rc, 0, 'projkey nodes');
like($out, qr/^gw-a\s+\d+\s+\S+Z\s+\d+/m, 'lists gw-a');
my $json = $t->cli_json('nodes');
is(join(',', map { $_->{node} } @{$json->{nodes} // []}), 'gw-a,gw-b',
    'projkey --json nodes: the API\'s JSON');

# node= errors, at nginx -t with the file and line

for my $c (['node=', 'empty'], ['"node=gw a"', 'a space'],
    ['node=' . ('x' x 256), '256 characters'], ["node=gw\x01", 'a control'])
{
    my ($param, $what) = @$c;
    (my $bad = $conf) =~ s/%%DB%%/$db/;
    $bad =~ s/node=%%NODE%%/$param/;
    $t2->write_config($bad);
    my ($trc, $tout) = $t2->nginx_t();
    ok($trc != 0 && $tout =~ /invalid node name .* in \S+nginx\.conf:\d+/,
        "node= with $what: refused with file:line") or diag($tout);
}

(my $long = $conf) =~ s/%%DB%%/$db/;
$long =~ s/%%NODE%%/'n' x 255/e;
$t2->write_config($long);
is(($t2->nginx_t())[0], 0, 'node= of 255 characters is fine');

# a database another process keeps locked: the heartbeat fails, logged once
# at warn; key checks and GET nodes go on.  (Not chattr +i: a process whose
# -shm mapping becomes immutable gets SIGBUS on its next write to it.)

open(my $locker, '|-', 'sqlite3', $db) or die "sqlite3: $!\n";
$locker->autoflush(1);
# (a timeout: nginx's own writers may hold the lock for a moment just then)
print $locker ".timeout 5000\nBEGIN IMMEDIATE;\n"
    . "UPDATE meta SET v = v WHERE k = 'seq';\n";
ok($t->wait_for(5, sub {
    sqlite_try("BEGIN IMMEDIATE; ROLLBACK;") != 0 }),
    'database locked by another process');

my $beat_re = qr/\[warn\].*heartbeat of node "gw-a" cannot be recorded/;
ok($t->wait_for(8, sub { $t->error_log =~ $beat_re }),
    'a failed heartbeat is logged at warn');
like($t->get('/api/', Authorization => "Bearer $dsecret"),
    qr/"api_key_disabled"/, 'key checks go on: a disabled key rejected');
$r = $a->call('GET', 'nodes');
is($r->{status}, 200, 'GET nodes still answers');
sleep 5.5;
my $count = () = $t->error_log =~ /$beat_re/g;
is($count, 1, 'the next failure is not logged again');

print $locker "COMMIT;\n";
close($locker);
ok($t->wait_for(8, sub { $t->error_log
    =~ /\[notice\].*heartbeat of node "gw-a" is recorded again/ }),
    'recorded again once writable, said at notice');
unlike($t->error_log, qr/\[error\].*heartbeat/, 'no heartbeat line at error');

###############################################################################

$t->done();

###############################################################################

# GET nodes until cond({name => node}) holds or timeout seconds pass
sub wait_nodes {
    my ($api, $timeout, $cond) = @_;
    my $r;

    $t->wait_for($timeout, sub {
        $r = $api->call('GET', 'nodes');
        return 0 unless $r->{status} == 200 && ref $r->{json} eq 'HASH';
        my %by = map { $_->{node} => $_ } @{$r->{json}{nodes} // []};
        return keys %by == 2 && $cond->(\%by);
    });

    return $r;
}

# the exit code of sqlite3 without waiting for a lock
sub sqlite_try {
    my ($sql) = @_;
    my ($rc) = $t->run_cmd('sqlite3', $db, $sql);
    return $rc;
}

sub sqlite {
    my ($sql) = @_;
    my ($rc, $out, $err) = $t->run_cmd('sqlite3', '-cmd', '.timeout 5000',
        $db, $sql);
    die "sqlite3 failed: $err\n" if $rc;
    return $out;
}

sub db_revision {
    my $v = sqlite("SELECT v FROM meta WHERE k = 'seq'");
    chomp $v;
    return $v;
}

###############################################################################
