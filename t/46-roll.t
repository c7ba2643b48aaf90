#!/usr/bin/perl

# projkey: rolling a key's secret.  POST keys/ID/roll answers 201 like a
# create (the new secret once, no-store); the new secret works at once on
# every worker; the previous one works until previous_expires_at (default:
# at once; at most 30 days ahead; the past means now), then is rejected as
# api_key_expired, and is purged from the database and the zone afterwards.
# Both report the same key to the backend; a disabled key stays disabled;
# a second roll drops the older previous secret; the CLI's roll reaches a
# running nginx; no secret is ever written anywhere.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Find;
use POSIX qw(strftime floor);
use Test::More;
use Time::HiRes qw(time sleep);

use Projkey::Test;
use Projkey::Admin;

###############################################################################

my $t = Projkey::Test->new()->plan(64)
    ->expect_errors(qr/\[crit\] .*projkey_zone "small" is full: /);

$t->write_config(<<'EOF')->run();
worker_processes 2;

http {
    projkey_zone keys:4m db=%%TESTDIR%%/keys.db sync=200ms flush=2s;
    projkey_zone small:32k db=%%TESTDIR%%/small.db;

    server {
        listen 127.0.0.1:%%PORT_0%% reuseport;

        location /admin/ {
            projkey_admin         keys;
            projkey_admin_user    $http_x_user;
            projkey_admin_project $http_x_project;
        }

        location /small/admin/ {
            projkey_admin         small;
            projkey_admin_user    $http_x_user;
            projkey_admin_project $http_x_project;
        }

        location /small/api/ {
            projkey small;
            return 200 "small ok\n";
        }

        location /api/ {
            projkey keys;
            add_header X-Worker $pid always;

            proxy_pass http://127.0.0.1:%%PORT_1%%;
            proxy_set_header X-Projkey-Key-Id   $projkey_key_id;
            proxy_set_header X-Projkey-Key-Name $projkey_key_name;
            proxy_set_header X-Projkey-Project  $projkey_project;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;

        location / {
            return 200 "id=$http_x_projkey_key_id name=$http_x_projkey_key_name project=$http_x_projkey_project\n";
        }
    }
}

EOF

###############################################################################

my $api = Projkey::Admin->new($t, user => 'alice', project => 'p');
my @secrets;

my ($k, $s0) = $api->create('rolled');
push @secrets, $s0;
like(call($s0), qr/ 200 /, 'the first secret works');
my $ident = "id=$k->{id} name=rolled project=p";

# the default: the previous secret stops at once

my $r = $api->call('POST', "keys/$k->{id}/roll", {});
is($r->{status}, 201, 'roll {}: 201');
is($r->{headers}{'cache-control'}, 'no-store', 'roll: no-store');
is_deeply([sort keys %{$r->{json}}], ['key', 'revision', 'secret'],
    'roll: key, secret, revision');
my $s1 = $r->{json}{secret};
push @secrets, $s1;
like($s1, qr/^sk-project-[0-9A-Za-z]{48}$/, 'roll: a secret');
isnt($s1, $s0, 'roll: a new one');
my $rk = $r->{json}{key};
ok($rk->{id} eq $k->{id} && $rk->{name} eq 'rolled'
    && $rk->{created_at} eq $k->{created_at} && $rk->{status} eq 'active',
    'roll: same id, name, status, creation');
is($rk->{preview}, 'sk-project-...' . substr($s1, -4), 'roll: new preview');
is($rk->{previous_preview}, $k->{preview}, 'roll: previous_preview');
ok(defined $rk->{previous_expires_at}
    && abs(epoch($rk->{previous_expires_at}) - time) < 3,
    'roll: previous_expires_at is now');
ok(!defined $rk->{expires_at}, 'roll: no expiry of its own');

my %seen = workers($s1);
is(join(' ', sort values %seen), '200 200', 'the new secret works at once');
like(call($s1), qr/\Q$ident\E/, 'the new secret: the same key to the backend');
%seen = workers($s0);
is(join(' ', sort values %seen), '401 401', 'the previous: rejected at once');
like(call($s0), qr/"api_key_expired"/, 'the previous: api_key_expired');

# the previous secret until T, and a second roll

# far enough ahead for the checks before T on a loaded machine
my $at = floor(time) + 6;
$r = $api->call('POST', "keys/$k->{id}/roll",
    { previous_expires_at => ts($at) });
is($r->{status}, 201, 'roll until T: 201');
my $s2 = $r->{json}{secret};
push @secrets, $s2;
is($r->{json}{key}{previous_expires_at}, ts($at), 'previous_expires_at T');
is($r->{json}{key}{previous_preview}, 'sk-project-...' . substr($s1, -4),
    'previous_preview: the first roll\'s');
%seen = workers($s2);
is(join(' ', sort values %seen), '200 200', 'the new secret works');
%seen = workers($s1);
is(join(' ', sort values %seen), '200 200', 'the previous works until T');
like(call($s1), qr/\Q$ident\E/, 'the previous: the same key to the backend');
like(call($s2), qr/\Q$ident\E/, 'the new: the same key to the backend');
like(call($s0), qr/"invalid_api_key"/,
    'the older previous is dropped by the second roll');

sleep_until($at - 0.5);
like(call($s1), qr/ 200 /, 'the previous: works just before T');
sleep_until($at + 0.05);
%seen = workers($s1);
is(join(' ', sort values %seen), '401 401', 'the previous: rejected at T');
like(call($s1), qr/"api_key_expired"/, 'the previous at T: api_key_expired');
like(call($s2), qr/ 200 /, 'the new secret still works');

# the purge (worker 0's flush, every 2 s here, a flush after T)

ok($t->wait_for(8, sub { call($s1) =~ /"invalid_api_key"/ }),
    'the previous is purged from the zone');
is(sql("SELECT count(*) FROM keys WHERE prev_hash IS NOT NULL"), '0',
    'and from the database');
$r = $api->call('GET', "keys/$k->{id}");
ok(!defined $r->{json}{key}{previous_preview}
    && !defined $r->{json}{key}{previous_expires_at},
    'KEY: no previous secret any more');
like($t->error_log, qr/1 previous secrets past their end removed/,
    'the purge is logged');

# limits and errors

$r = $api->call('POST', "keys/$k->{id}/roll",
    { previous_expires_at => ts(time + 31 * 86400) });
ok($r->{status} == 400 && code($r) eq 'invalid_request'
    && $r->{json}{error}{message} =~ /30 days/, '31 days ahead: 400');
$r = $api->call('POST', "keys/$k->{id}/roll",
    { previous_expires_at => 'soon' });
is($r->{status}, 400, 'a bad time: 400');
$r = $api->call('POST', "keys/$k->{id}/roll", { name => 'x' });
is($r->{status}, 400, 'an unknown field: 400');
$r = $api->call('POST', "keys/$k->{id}/roll", 'x',
    'Content-Type' => 'text/plain');
is($r->{status}, 415, 'not JSON: 415');
$r = $api->call('GET', "keys/$k->{id}/roll");
ok($r->{status} == 405 && $r->{headers}{allow} eq 'POST', 'GET roll: 405');
$r = $api->call('POST', 'keys/nosuchkey123/roll', {});
is($r->{status}, 404, 'roll of no such key: 404');
$r = $api->as(project => 'q')->call('POST', "keys/$k->{id}/roll", {});
is($r->{status}, 404, 'roll of another project\'s key: 404');
$r = $api->call('POST', "keys/$k->{id}/roll/x", {});
is($r->{status}, 404, 'keys/ID/roll/x: 404');
like(call($s2), qr/ 200 /, 'the failed calls changed nothing');

# 30 days is fine; a past T means at once

$r = $api->call('POST', "keys/$k->{id}/roll",
    { previous_expires_at => ts(time + 30 * 86400 - 5) });
is($r->{status}, 201, '30 days ahead: 201');
my $s3 = $r->{json}{secret};
push @secrets, $s3;
like(call($s2), qr/ 200 /, 'the previous works for 30 days');
$r = $api->call('POST', "keys/$k->{id}/roll",
    { previous_expires_at => ts(time - 3600) });
is($r->{status}, 201, 'a past T: 201');
my $s4 = $r->{json}{secret};
push @secrets, $s4;
ok(abs(epoch($r->{json}{key}{previous_expires_at}) - time) < 3,
    'a past T: previous_expires_at now');
like(call($s3), qr/"api_key_expired"/, 'a past T: the previous stops at once');
like(call($s2), qr/"invalid_api_key"/, 'the one before is dropped');

# a disabled key stays disabled

my ($d, $d0) = $api->create('disabled');
push @secrets, $d0;
$api->call('PATCH', "keys/$d->{id}", { status => 'disabled' });
$r = $api->call('POST', "keys/$d->{id}/roll",
    { previous_expires_at => ts(time + 60) });
my $d1 = $r->{json}{secret};
push @secrets, $d1;
ok($r->{status} == 201 && $r->{json}{key}{status} eq 'disabled',
    'roll of a disabled key: 201, still disabled');
ok(call($d0) =~ /"api_key_disabled"/ && call($d1) =~ /"api_key_disabled"/,
    'both secrets rejected as disabled');
$api->call('PATCH', "keys/$d->{id}", { status => 'active' });
ok(call($d0) =~ / 200 / && call($d1) =~ / 200 /, 'enabled: both work');

# a full zone: the roll is 507 and changes nothing

my $small = $api->as(prefix => '/small/admin/');
my ($fk, $fs) = $small->create('k-0');
push @secrets, $fs;
my $full;
for my $i (1 .. 2000) {
    my $x = $small->call('POST', 'keys', { name => "k-$i" });
    push @secrets, $x->{json}{secret} if $x->{status} == 201;
    $full = $x, last if $x->{status} != 201;
}
is($full && $full->{status}, 507, 'the small zone fills up: 507');
$r = $small->call('POST', "keys/$fk->{id}/roll",
    { previous_expires_at => ts(time + 60) });
ok($r->{status} == 507 && code($r) eq 'zone_full'
    && !defined $r->{json}{secret}, 'roll in a full zone: 507, no secret');
ok($t->get('/small/api/', Authorization => "Bearer $fs") =~ / 200 /
    && !defined $small->call('GET', "keys/$fk->{id}")->{json}{key}
        {previous_preview}, 'and nothing changed');

# the audit trail

$r = $api->call('GET', 'audit?limit=100');
my @rolls = grep { $_->{action} eq 'roll' && $_->{key_id} eq $k->{id} }
    @{$r->{json}{events}};
is(scalar @rolls, 4, 'audit: a roll event per roll that succeeded');
ok($rolls[-1]{detail}{preview}{from} eq $k->{preview}
    && $rolls[-1]{detail}{preview}{to} eq 'sk-project-...' . substr($s1, -4)
    && $rolls[-1]{detail}{previous_expires_at} =~ /Z$/,
    'audit: the previews and the previous secret\'s end');

# the previous secret across a restart

$r = $api->call('POST', "keys/$d->{id}/roll",
    { previous_expires_at => ts(time + 60) });
my $d2 = $r->{json}{secret};
push @secrets, $d2;
$t->restart();
ok(call($d1) =~ / 200 / && call($d2) =~ / 200 /,
    'after a restart: both secrets work');

# the CLI: a roll reaches the running nginx by the sync, twice

my ($rc, $out) = $t->cli('--project', 'p', '--json', 'roll', $d->{id},
    '--previous-expires', ts(time + 60));
my $c1 = ($out =~ /"secret":"(sk-project-\w+)"/)[0] // '';
push @secrets, $c1;
is($rc, 0, 'cli roll: exit 0');
ok($t->wait_for(2, sub { call($c1) =~ / 200 / }), 'cli roll: the new works');
like(call($d2), qr/ 200 /, 'cli roll: the previous works');
like(call($d1), qr/"invalid_api_key"/,
    'cli roll: the older previous left the zone');
($rc, $out) = $t->cli('--project', 'p', 'roll', $d->{id});
my $c2 = ($out =~ /^Secret: (sk-project-\w+)$/m)[0] // '';
push @secrets, $c2;
ok($rc == 0 && $out =~ /^Previous secret: sk-project-\.\.\.\w{4} until /m,
    'cli roll: text');
ok($t->wait_for(2, sub { call($c2) =~ / 200 / }), 'cli roll again: works');
like(call($c1), qr/"api_key_expired"/, 'cli roll again: previous expired');
like(call($d2), qr/"invalid_api_key"/, 'cli roll again: older one gone');

# no secret anywhere

$t->stop();
my @files;
find({ wanted => sub { push @files, $File::Find::name if -f },
    no_chdir => 1 }, $t->testdir);
my @found = scan(@files);
is("@found", '', 'no secret in any file: logs, database, WAL');

###############################################################################

$t->done();

###############################################################################

sub ts { strftime('%Y-%m-%dT%H:%M:%SZ', gmtime($_[0])) }

sub epoch {
    my ($s) = @_;
    my ($y, $m, $d, $h, $mi, $se) = $s =~ /^(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)Z$/
        or return 0;
    require Time::Local;
    return Time::Local::timegm($se, $mi, $h, $d, $m - 1, $y);
}

sub code { Projkey::Admin::code($_[0]) }

sub call {
    my ($k) = @_;
    return $t->get('/api/', Authorization => "Bearer $k");
}

sub sql {
    my ($q) = @_;
    my (undef, $v) = $t->run_cmd('sqlite3', $t->db, $q);
    chomp $v;
    return $v;
}

sub sleep_until {
    my ($when) = @_;
    my $d = $when - time;
    sleep $d if $d > 0;
}

sub workers {
    my ($k) = @_;
    my %status;

    for (1 .. 40) {
        my $r = call($k);
        my ($code) = $r =~ /^HTTP\/1\.1 (\d+)/;
        my ($pid) = $r =~ /^X-Worker: (\d+)/mi;
        $status{$pid // 'none'} = $code // 'none' unless $status{$pid // ''};
        last if keys %status >= 2;
    }

    return %status;
}

# "file: secret n" for each secret of which 16 characters in a row are in a
# file (as t/18-secrets.t scans)
sub scan {
    my (@files) = @_;
    my @found;

    for my $f (@files) {
        my $data = $t->read_file($f);
        next unless length $data;

        KEY: for my $i (0 .. $#secrets) {
            my $body = substr($secrets[$i], 11);
            next unless length $body == 48;
            for my $at (0 .. length($body) - 16) {
                next unless index($data, substr($body, $at, 16)) >= 0;
                push @found, "$f: secret $i";
                next KEY;
            }
        }
    }

    return @found;
}

###############################################################################
