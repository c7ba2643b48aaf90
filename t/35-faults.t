#!/usr/bin/perl

# projkey: the key database misbehaving under a running nginx.
# - locked by another process longer than the admin busy timeout (5 s):
#   admin writes answer 503 database_unavailable, nothing changes, key
#   checks go on from the zone; once the lock is gone, writes work;
# - deleted: the keys in the zone keep working; an admin write answers 503
#   with a plain message (no path), and no empty file takes its place;
# - replaced by another projkey database (a restore by rename): the running
#   nginx follows it within the sync interval, and so does a reload.
# In every case, each key whose state is known gets the right answer.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use IO::Handle;
use Test::More;
use Time::HiRes qw(time sleep);

use Projkey::Test;
use Projkey::Admin;

###############################################################################

my $t = Projkey::Test->new()->plan(40);

$t->expect_errors(qr/projkey_zone "keys": database/,
    qr/projkey_zone "keys": the database file .* is missing .*: restore it/);

my ($id, $key) = $t->create_key('first');
my ($did, $dkey) = $t->create_key('disabled');
die "projkey disable failed\n" if ($t->cli('disable', $did))[0];

$t->write_config(<<'EOF')->run();
worker_processes 2;

http {
    projkey_zone keys:4m db=%%TESTDIR%%/keys.db sync=200ms;

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
        }
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;

        location / {
            return 204;
        }
    }
}

EOF

my $api = Projkey::Admin->new($t, user => 'alice');

# every key whose state is known: secret => expected status
my %expect = ($key => 204, $dkey => 401);

sub check_all {
    my @bad;
    for my $k (sort keys %expect) {
        for (1 .. 4) {   # new connections: both workers, most likely
            my ($st) = $t->get('/api/', Authorization => "Bearer $k")
                =~ /^HTTP\/1\.1 (\d+)/;
            $st //= 0;
            push @bad, substr($k, 0, 16) . "...: $st, not $expect{$k}"
                if $st != $expect{$k};
        }
    }
    return join "\n", @bad;
}

my ($k2, $s2) = $api->create('made by the API');
$expect{$s2} = 204;
is(check_all(), '', 'all keys right at the start');

###############################################################################
# locked by another process

my $lock = lock_db($t->db);
ok($lock, 'another process holds the write lock');

my $start = time;
my $r = $api->call('POST', 'keys', { name => 'while locked' });
my $took = time - $start;
is($r->{status}, 503, 'create while locked: 503');
is(Projkey::Admin::code($r), 'database_unavailable', 'code');
like($r->{json}{error}{message} // '', qr/busy.*nothing was changed.*try again/i,
    'the message says busy, nothing changed, try again');
ok($took >= 4 && $took < 15, sprintf 'after the busy timeout (%.1f s)', $took);
unlike($r->{body}, qr/sk-project-/, 'no secret in the 503');
is(Projkey::Admin::internals($t, $r), '', 'no internals in the 503');

$r = $api->call('PATCH', "keys/$k2->{id}", { status => 'disabled' });
is($r->{status}, 503, 'disable while locked: 503');
$r = $api->call('DELETE', "keys/$k2->{id}");
is($r->{status}, 503, 'delete while locked: 503');

is(check_all(), '', 'key checks unaffected while locked');

$r = $api->call('GET', 'keys');
ok($r->{status} == 200 || $r->{status} == 503,
    "list while locked: $r->{status}");

close $lock;

my $list = $api->list;
is(join(',', sort map { $_->{name} } @$list), 'disabled,first,made by the API',
    'after the lock: nothing was created');
is((grep { $_->{id} eq $k2->{id} } @$list)[0]{status}, 'active',
    'nothing was disabled');
is(db_names(), 'disabled,first,made by the API', 'the database agrees');

my ($k3, $s3) = $api->create('after the lock');
$expect{$s3} = 204;
ok($k3, 'create works once the lock is released');
is(check_all(), '', 'all keys right after the lock');

###############################################################################
# the database file deleted while nginx runs

unlink map { $t->db . $_ } '', '-wal', '-shm';
ok(!-e $t->db, 'database deleted');
sleep 0.6;   # a few sync intervals

is(check_all(), '', 'keys keep working from the zone');

# a missing file is never taken for a new empty database: the writes are
# refused, the keys keep their last known state

$r = $api->call('POST', 'keys', { name => 'after delete' });
is($r->{status} . ' ' . Projkey::Admin::code($r),
    '503 database_unavailable', 'create after delete: 503');
like($r->{json}{error}{message} // '', qr/unavailable.*nothing was changed/i,
    'the message says unavailable, nothing changed');
is(Projkey::Admin::internals($t, $r), '', 'no path in the message');
unlike($r->{body}, qr/sk-project-\w{48}/, 'no secret in the answer');
like($t->error_log, qr/the database file ".*keys\.db" is missing/,
    'error.log names the missing file');
ok(!-e $t->db, 'no file was created at the path');

$r = $api->call('PATCH', "keys/$k3->{id}", { status => 'disabled' });
is($r->{status} . ' ' . Projkey::Admin::code($r),
    '503 database_unavailable', 'disable after delete: 503, nothing changed');

# a request is checked in full before the database is needed
$r = $api->call('POST', 'keys', '{"name":', 'Content-Type' => 'application/json');
is($r->{status} . ' ' . Projkey::Admin::code($r), '400 invalid_request',
    'invalid JSON without a database: 400, not 503');
$r = $api->call('PATCH', "keys/$k3->{id}", { status => 'gone' });
is($r->{status} . ' ' . Projkey::Admin::code($r), '400 invalid_request',
    'a bad status without a database: 400, not 503');
is(check_all(), '', 'each key as it was');

# a restart after the delete: the file is created empty, no key works

$t->stop();
unlink map { $t->db . $_ } '', '-wal', '-shm';
$t->run();
$_ = 401 for values %expect;
is(check_all(), '', 'restart with the file gone: a new empty database, '
    . 'no key accepted');

###############################################################################
# replaced by a copy of itself (a restore by rename), then changed with the
# CLI: the change must be enforced within the sync interval

my ($aid, $akey) = $t->create_key('a in the current file');
$t->reload();
$expect{$akey} = 204;
is(check_all(), '', 'a key of the current file works');

my $copy = $t->testdir . '/copy.db';
$t->run_cmd('sqlite3', $t->db, ".backup '$copy'");
rename $copy, $t->db or die "rename: $!\n";
unlink map { $t->db . $_ } '-wal', '-shm';
is(check_all(), '', 'replaced by a copy: the same answers');

my ($rc) = $t->cli('disable', $aid);
is($rc, 0, 'CLI disable in the replacing file');
my $ok = $t->wait_for(3, sub {
    $t->get('/api/', Authorization => "Bearer $akey") =~ /^HTTP\/1\.1 401 /
});
ok($ok, 'the CLI disable is enforced within 3 s (sync=200ms)');
$expect{$akey} = 401;

###############################################################################
# replaced by another projkey database

my $other = $t->testdir . '/other.db';
my ($bid, $bkey) = $t->create_key('b in another file', db => $other);
# a consistent single file: fold the WAL in
$t->run_cmd('sqlite3', $other, 'PRAGMA wal_checkpoint(TRUNCATE);');
rename $other, $t->db or die "rename: $!\n";
unlink map { $t->db . $_ } '-wal', '-shm';
sleep 1;

# worker 0 follows the file at the path: another database (its instance
# differs) makes the zone match it in full, before any reload
%expect = ($akey => 401, $s3 => 401, $bkey => 204);
is(check_all(), '', 'replaced by another database: its keys, not the old');

$r = $api->call('POST', 'keys', { name => 'after replace' });
is($r->{status}, 201, 'create after replace: 201');
my $made = $r->{json}{secret} // 'none';
like(db_names(), qr/after replace/, 'the key is in the new file');
$expect{$made} = 204;
is(check_all(), '', 'the key made after the replace works');

$t->reload();
is(check_all(), '', 'after a reload: the new file\'s keys, not the old');

my $names = db_names();
my $listed = join ',', sort map { $_->{name} } @{$api->list};
is($listed, $names, 'admin list == the file');

###############################################################################

$t->done();

###############################################################################

# the names in the database file, sorted, via the CLI
sub db_names {
    my ($data) = $t->cli_json('list', '--limit', '1000');
    return '' unless ref $data eq 'HASH' || ref $data eq 'ARRAY';
    my $keys = ref $data eq 'HASH' ? $data->{keys} : $data;
    return join ',', sort map { $_->{name} } @$keys;
}

# sqlite3 holding an exclusive transaction until its stdin closes
sub lock_db {
    my ($db) = @_;
    open my $fh, '|-', 'sqlite3', $db or die "sqlite3: $!\n";
    $fh->autoflush(1);
    # a timeout: nginx's own writers (the flush, its checkpoint) may hold
    # the lock for a moment just then
    print $fh ".timeout 5000\nBEGIN EXCLUSIVE;\n"
        . "INSERT INTO meta SELECT * FROM meta WHERE 0;\n";

    # wait until a writer with no timeout fails
    for (1 .. 100) {
        my ($rc, $out, $err) = $t->run_cmd('sqlite3', $db,
            'BEGIN IMMEDIATE; ROLLBACK;');
        return $fh if "$out$err" =~ /locked|busy/i;
        sleep 0.05;
    }

    close $fh;
    return undef;
}

###############################################################################
