#!/usr/bin/perl

# projkey: key expiry.  expires_at on create and PATCH (a time, or null to
# clear it), enforced by every worker to the second from the zone alone:
# 401 api_key_expired and $projkey_status "expired" once it has passed; the
# KEY's status reads "expired" (whatever the stored status, which stays);
# audit events; bad times and the 10-year limit are 400; the expiry holds
# across a reload and a restart; the CLI's expire reaches a running nginx.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use POSIX qw(strftime floor);
use Test::More;
use Time::HiRes qw(time sleep);

use Projkey::Test;
use Projkey::Admin;

###############################################################################

my $t = Projkey::Test->new()->plan(50);

$t->write_config(<<'EOF')->run();
worker_processes 2;

http {
    projkey_zone keys:4m db=%%TESTDIR%%/keys.db sync=200ms;

    log_format projkey '$projkey_status $projkey_key_id';

    server {
        listen 127.0.0.1:%%PORT_0%% reuseport;

        location /admin/ {
            projkey_admin         keys;
            projkey_admin_user    $http_x_user;
            projkey_admin_project $http_x_project;
        }

        location /api/ {
            projkey keys;
            add_header X-Worker $pid always;
            access_log %%TESTDIR%%/status.log projkey;

            proxy_pass http://127.0.0.1:%%PORT_1%%;
            proxy_set_header X-Projkey-Key-Id $projkey_key_id;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;

        location / {
            return 200 "id=$http_x_projkey_key_id\n";
        }
    }
}

EOF

###############################################################################

my $api = Projkey::Admin->new($t, user => 'alice', project => 'p');

# expires at the start of a second 2 to 3 s from now
my $at = floor(time) + 3;

my $r = $api->call('POST', 'keys', { name => 'short', expires_at => ts($at) });
is($r->{status}, 201, 'create with expires_at: 201');
my ($k, $secret) = ($r->{json}{key}, $r->{json}{secret});
is($k->{expires_at}, ts($at), 'create: expires_at in KEY');
is($k->{status}, 'active', 'create: active until then');

sleep_until($at - 0.5);
my %seen = workers($secret);
is(join(' ', sort values %seen), '200 200', 'works on both workers before');
like(call($secret), qr/ 200 .*id=$k->{id}/s, 'the backend gets its id');

sleep_until($at + 0.05);
%seen = workers($secret);
is(join(' ', sort values %seen), '401 401',
    'rejected on both workers within the second of its expiry');
$r = call($secret);
like($r, qr/ 401 /, 'expired: 401');
like($r, qr/"code":"api_key_expired"/, 'expired: api_key_expired');
like($r, qr/"message":"The API key has expired\."/, 'expired: message');
like($r, qr/WWW-Authenticate: Bearer realm="projkey", error="invalid_token"/,
    'expired: WWW-Authenticate');
unlike($r, qr/id=/, 'expired: nothing reached the backend');

$r = $api->call('GET', "keys/$k->{id}");
is($r->{json}{key}{status}, 'expired', 'KEY status: expired');
is($r->{json}{key}{expires_at}, ts($at), 'KEY expires_at kept');
my ($listed) = grep { $_->{id} eq $k->{id} } @{$api->list};
is($listed->{status}, 'expired', 'the list says expired too');

# clearing the expiry brings it back

$r = $api->call('PATCH', "keys/$k->{id}", { expires_at => undef });
is($r->{status}, 200, 'PATCH expires_at null: 200');
ok(!defined $r->{json}{key}{expires_at}, 'expires_at null');
is($r->{json}{key}{status}, 'active', 'active again');
%seen = workers($secret);
is(join(' ', sort values %seen), '200 200', 'works again on both workers');

# set again, in the future, then moved on: the latest one counts

$at = floor(time) + 2;
$r = $api->call('PATCH', "keys/$k->{id}", { expires_at => ts($at) });
ok($r->{status} == 200 && $r->{json}{key}{expires_at} eq ts($at),
    'PATCH expires_at: set');
$r = $api->call('PATCH', "keys/$k->{id}", { expires_at => ts($at + 3600),
    name => 'moved' });
ok($r->{status} == 200 && $r->{json}{key}{expires_at} eq ts($at + 3600)
    && $r->{json}{key}{name} eq 'moved', 'PATCH expires_at and name');
sleep_until($at + 0.1);
like(call($secret), qr/ 200 /, 'the later expiry counts');

# precedence: a disabled key past its expiry is expired

$at = floor(time) + 2;
$api->call('PATCH', "keys/$k->{id}", { expires_at => ts($at),
    status => 'disabled' });
like(call($secret), qr/"api_key_disabled"/, 'disabled before its expiry');
sleep_until($at + 0.05);
like(call($secret), qr/"api_key_expired"/, 'expired once past it');
$r = $api->call('GET', "keys/$k->{id}");
is($r->{json}{key}{status}, 'expired', 'and its KEY says expired');
$r = $api->call('PATCH', "keys/$k->{id}", { expires_at => undef });
is($r->{json}{key}{status}, 'disabled', 'cleared: the stored status shows');
like(call($secret), qr/"api_key_disabled"/, 'cleared: disabled');
$api->call('PATCH', "keys/$k->{id}", { status => 'active' });

# the audit trail

$r = $api->call('GET', 'audit?limit=20');
my @ev = grep { $_->{key_id} eq $k->{id} } @{$r->{json}{events} // []};
my @exp = grep { $_->{action} =~ /_expiry$/ } @ev;
is(join(' ', map { $_->{action} } reverse @exp),
    'clear_expiry set_expiry set_expiry set_expiry clear_expiry',
    'audit: set_expiry and clear_expiry events');
ok($exp[-1]{detail}{expires_at}{from} =~ /Z$/
    && !defined $exp[-1]{detail}{expires_at}{to}, 'audit: clear detail');
ok(!defined $exp[-2]{detail}{expires_at}{from}
    && $exp[-2]{detail}{expires_at}{to} =~ /Z$/, 'audit: set detail');

# bad times

my @bad = ('tomorrow', '2026-11-27', '2026-11-27 05:35:01Z',
    ts(time + 3600) =~ s/Z$/+02:00/r, 1795757701, JSON::PP::true(), {});
my $bad = 0;
for my $v (@bad) {
    $r = $api->call('PATCH', "keys/$k->{id}", { expires_at => $v });
    $bad++ if $r->{status} == 400 && code($r) eq 'invalid_request';
}
is($bad, scalar @bad, 'bad times: 400 invalid_request');
$r = $api->call('PATCH', "keys/$k->{id}", { expires_at => 'soon' });
like($r->{json}{error}{message}, qr/RFC 3339/, 'bad time: says the form');
$r = $api->call('PATCH', "keys/$k->{id}", { expires_at => ts(time - 1) });
is(code($r), 'invalid_request', 'the past: 400');
like($r->{json}{error}{message}, qr/in the future/, 'the past: says so');
$r = $api->call('POST', 'keys', { name => 'never made',
    expires_at => ts(time - 10) });
is($r->{status}, 400, 'create in the past: 400');
ok(!grep({ $_->{name} eq 'never made' } @{$api->list}), 'and nothing made');

my @now = gmtime(time);
my $ten = sprintf('%04d-%02d-%02dT%02d:%02d:%02dZ', $now[5] + 1910,
    $now[4] + 1, $now[3], $now[2], $now[1], $now[0]);
$r = $api->call('PATCH', "keys/$k->{id}", { expires_at => $ten });
is($r->{status}, 200, '10 years ahead, less a second or so: 200');
$ten =~ s/^(\d{4})-(\d\d)-(\d\d)/sprintf('%s-%s-%02d', $1, $2, $3 + 1)/e
    if $now[3] < 28;
$ten =~ s/^(\d{4})/$1 + 1/e if $now[3] >= 28;
$r = $api->call('PATCH', "keys/$k->{id}", { expires_at => $ten });
is($r->{status}, 400, 'more than 10 years ahead: 400');
like($r->{json}{error}{message}, qr/10 years/, 'and says so');
$r = $api->call('PATCH', "keys/$k->{id}", { expires_at => undef });

# $projkey_status

my $log = $t->read_file('status.log');
like($log, qr/^expired -$/m, '$projkey_status expired in the log');

# reload and restart: the expiry holds

my ($k2, $s2) = (undef, undef);
$at = floor(time) + 4;
$r = $api->call('POST', 'keys', { name => 'across', expires_at => ts($at) });
($k2, $s2) = ($r->{json}{key}, $r->{json}{secret});
my ($k3, $s3) = $api->create('never expires');
$t->reload();
like(call($s2), qr/ 200 /, 'after a reload: works before its expiry');
sleep_until($at + 0.05);
like(call($s2), qr/"api_key_expired"/, 'after a reload: expired on time');
$t->restart();
like(call($s2), qr/"api_key_expired"/, 'after a restart: still expired');
like(call($s3), qr/ 200 /, 'after a restart: the other key works');
$r = $api->call('PATCH', "keys/$k2->{id}", { expires_at => ts(time + 60) });
like(call($s2), qr/ 200 /, 'after a restart: a new expiry revives it');

# the CLI: expire ID TIME reaches the running nginx by the sync

$at = floor(time) + 3;
my ($rc, $out) = $t->cli('--project', 'p', '--json', 'expire',
    $k3->{id}, ts($at));
is($rc, 0, 'cli expire: exit 0');
like($out, qr/"expires_at":"\Q${\ts($at)}\E"/, 'cli expire: the KEY');
sleep 0.6;
%seen = workers($s3);
is(join(' ', sort values %seen), '200 200', 'cli expire: works until then');
sleep_until($at + 0.05);
%seen = workers($s3);
is(join(' ', sort values %seen), '401 401', 'cli expire: expired on time');
($rc) = $t->cli('--project', 'p', 'expire', $k3->{id}, 'never');
is($rc, 0, 'cli expire never');
ok($t->wait_for(2, sub { call($s3) =~ / 200 / }), 'cli: works again');

###############################################################################

$t->done();

###############################################################################

sub ts { strftime('%Y-%m-%dT%H:%M:%SZ', gmtime($_[0])) }

sub code { Projkey::Admin::code($_[0]) }

sub call {
    my ($k) = @_;
    return $t->get('/api/', Authorization => "Bearer $k");
}

sub sleep_until {
    my ($when) = @_;
    my $d = $when - time;
    sleep $d if $d > 0;
}

# the answer of each worker to the key: {pid => status}, both workers asked
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

###############################################################################
