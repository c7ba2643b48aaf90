#!/usr/bin/perl

# projkey: projkey_metrics.  The answer parsed by Prometheus' own Python
# client (t/lib/prom-parse.py): every series of every zone (a zone declared
# but unused, a name that needs escaping), HELP and TYPE, the counts of
# known traffic summed over two workers and kept across a reload, a request
# checked in two locations counted once, the keys' gauges following admin
# and CLI changes, the store's health while its database is away, the
# content type, HEAD and 405.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use POSIX qw(strftime);
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep time);

use Projkey::Test;
use Projkey::Admin;

###############################################################################

my $t = Projkey::Test->new()->plan(53);

$t->expect_errors(
    qr/\[alert\] .*projkey_zone "b": the database file ".*b\.db" is missing/);

my ($id, $key) = $t->create_key('good');
my ($did, $dkey) = $t->create_key('off');
$t->cli('disable', $did);

my $bdb = $t->testdir . '/b.db';
my ($bid, $bkey) = $t->create_key('b-good', db => $bdb);

# an unknown key: well formed, from a database of its own
my (undef, $unknown) = $t->create_key('elsewhere',
    db => $t->testdir . '/elsewhere.db');

(my $malformed = $key) =~ s/(.)$/$1 eq 'A' ? 'B' : 'A'/e;

$t->write_config(<<'EOF')->run();
worker_processes 2;

http {
    log_format w '$pid $projkey_status';

    projkey_zone keys:4m db=%%TESTDIR%%/keys.db sync=200ms flush=1s;
    projkey_zone b:1m db=%%TESTDIR%%/b.db sync=200ms;

    # declared, used by no location; its name needs escaping in a label
    projkey_zone "we\"ird\\z:1m" db=%%TESTDIR%%/weird.db;

    server {
        listen 127.0.0.1:%%PORT_0%% reuseport;
        access_log %%TESTDIR%%/workers.log w;

        location /api/ {
            projkey keys;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }

        # checked here, then again in @api: one request, counted once
        location /twice/ {
            projkey keys;
            try_files /nonexistent @api;
        }

        location @api {
            projkey keys;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }

        location /b/ {
            projkey b;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }

        location /admin/ {
            projkey_admin         keys;
            projkey_admin_user    $http_x_user;
            projkey_admin_project default;
        }

        location = /metrics {
            projkey_metrics;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;

        location / {
            return 200 "ok\n";
        }
    }
}

EOF

my @zones = ('keys', 'b', 'we"ird\\z');
my @statuses = qw/accepted missing malformed unknown disabled expired
    unavailable/;
my @codes = qw/200 201 204 400 403 404 405 413 415 500 503 507/;

###############################################################################

# the answer itself

my $r = $t->get('/metrics');
my ($status, $h, $body) = Projkey::Test::parse_response($r);
is($status, 200, 'metrics: 200');
is($h->{'content-type'}, 'text/plain; version=0.0.4', 'content type');

my $m0 = scrape();
ok($m0, 'parsed by prometheus_client');

my %types = map { $_->{name} => $_->{type} } @{$m0->{families}};
is_deeply(\%types, {
    projkey_requests => 'counter',
    projkey_admin_requests => 'counter',
    projkey_keys => 'gauge',
    projkey_zone_used_bytes => 'gauge',
    projkey_zone_size_bytes => 'gauge',
    projkey_revision => 'gauge',
    projkey_store_up => 'gauge',
    projkey_store_last_contact_seconds => 'gauge',
}, 'every family once, with its TYPE');
ok(!grep({ !length $_->{help} } @{$m0->{families}}), 'every family has HELP');

my @want = (
    (map { my $z = $_; map { sk('projkey_requests_total', zone => $z,
        status => $_) } @statuses } @zones),
    (map { my $z = $_; map { sk('projkey_admin_requests_total', zone => $z,
        code => $_) } @codes } @zones),
    (map { my $z = $_; map { sk('projkey_keys', zone => $z, status => $_) }
        qw/active disabled expired/ } @zones),
    (map { my $z = $_; map { sk($_, zone => $z) } qw/projkey_zone_used_bytes
        projkey_zone_size_bytes projkey_revision projkey_store_up
        projkey_store_last_contact_seconds/ } @zones),
);
is_deeply([sort keys %{$m0->{v}}], [sort @want],
    'every series of every zone, no other');
ok(!grep({ $m0->{v}{$_} != 0 } grep { /_requests_total/ } keys %{$m0->{v}}),
    'counters start at 0');

is(v($m0, 'projkey_keys', zone => 'keys', status => 'active'), 1,
    'keys: 1 active');
is(v($m0, 'projkey_keys', zone => 'keys', status => 'disabled'), 1,
    'keys: 1 disabled');
is(v($m0, 'projkey_keys', zone => 'b', status => 'active'), 1, 'b: 1 active');
is(v($m0, 'projkey_keys', zone => 'we"ird\\z', status => 'active'), 0,
    'unused zone, escaped name: 0 keys');
is(v($m0, 'projkey_zone_size_bytes', zone => 'keys'), 4 * 1048576,
    'keys: size 4m');
is(v($m0, 'projkey_zone_size_bytes', zone => 'b'), 1048576, 'b: size 1m');
my $used = v($m0, 'projkey_zone_used_bytes', zone => 'keys');
ok($used > 0 && $used < 4 * 1048576, "keys: $used bytes used");
cmp_ok(v($m0, 'projkey_revision', zone => 'keys'), '>=', 3,
    'keys: revision of 2 creates and a disable');
is(v($m0, "projkey_store_up", zone => $_), 1, "$_: store up") for @zones;
my $contact = v($m0, 'projkey_store_last_contact_seconds', zone => 'keys');
ok($contact > time - 5 && $contact <= time + 1,
    'last contact: a recent Unix time');

# known traffic, every request on a new connection: both workers serve

my %sent = (accepted => 200, unknown => 30, malformed => 20, missing => 10,
    disabled => 15);

send_n($sent{accepted}, '/api/x', Authorization => "Bearer $key");
send_n($sent{unknown}, '/api/x', Authorization => "Bearer $unknown");
send_n($sent{malformed}, '/api/x', Authorization => "Bearer $malformed");
send_n($sent{missing}, '/api/x');
send_n($sent{disabled}, '/api/x', Authorization => "Bearer $dkey");
send_n(5, '/twice/x', Authorization => "Bearer $key");
send_n(7, '/b/x', Authorization => "Bearer $bkey");

my %pids = map { (split / /)[0] => 1 }
    grep { / accepted$/ } split /\n/, $t->read_file('workers.log');
is(scalar keys %pids, 2, 'both workers served accepted keys');

my $api = Projkey::Admin->new($t, user => 'alice');
my @created = map { $api->call('POST', 'keys', { name => "n$_" }) } 1 .. 3;
is(scalar(grep { $_->{status} == 201 } @created), 3, 'admin: 3 created');
$api->call('GET', "keys/$_") for qw/nosuchkey1 nosuchkey2/;
$api->call('PUT', 'keys');
$api->as(user => undef)->call('GET', 'keys');
$api->call('PATCH', "keys/$created[0]{json}{key}{id}",
    { status => 'disabled' });

my $m1 = scrape();

is(d($m1, $m0, 'projkey_requests_total', zone => 'keys', status => $_),
    $sent{$_} + ($_ eq 'accepted' ? 5 : 0), "keys: $_ counted")
    for qw/accepted unknown malformed missing disabled/;
is(d($m1, $m0, 'projkey_requests_total', zone => 'b', status => 'accepted'),
    7, 'b: accepted counted in its own zone');
is(d($m1, $m0, 'projkey_admin_requests_total', zone => 'keys', code => $_->[0]),
    $_->[1], "admin: $_->[2]")
    for [201, 3, '3 x 201'], [404, 2, '2 x 404'], [405, 1, '405'],
        [403, 1, '403'], [200, 1, '200'];
is(v($m1, 'projkey_admin_requests_total', zone => 'b', code => 201), 0,
    'admin: b untouched');
is(v($m1, 'projkey_keys', zone => 'keys', status => 'active'), 3,
    'keys: 1 + 3 created - 1 disabled active');
is(v($m1, 'projkey_keys', zone => 'keys', status => 'disabled'), 2,
    'keys: 2 disabled');
is(d($m1, $m0, 'projkey_revision', zone => 'keys'), 4,
    'keys: revision follows 4 admin writes');

# a change by the CLI reaches the gauges through worker 0's sync

$t->cli('enable', $did);
ok($t->wait_for(5, sub { v(scrape(), 'projkey_keys', zone => 'keys',
    status => 'disabled') == 1 }), 'CLI enable: disabled 1 after the sync');

# the counters are in the zone: a reload keeps them

$t->reload();
my $m2 = scrape();
is(d($m2, $m1, 'projkey_requests_total', zone => 'keys', status => $_), 0,
    "reload: $_ kept") for qw/accepted unknown/;
is(d($m2, $m1, 'projkey_admin_requests_total', zone => 'keys', code => 201),
    0, 'reload: admin 201 kept');

send_n(40, '/api/x', Authorization => "Bearer $key");
is(d(scrape(), $m1, 'projkey_requests_total', zone => 'keys',
    status => 'accepted'), 40, 'after reload: new workers add to them');

# the store away: down, the metrics still answer; back: up

rename $bdb, "$bdb.away" or die "rename: $!\n";
ok($t->wait_for(5, sub { v(scrape(), 'projkey_store_up', zone => 'b') == 0 }),
    'b: store down without its database');
is(v(scrape(), 'projkey_store_up', zone => 'keys'), 1, 'keys: still up');
rename "$bdb.away", $bdb or die "rename: $!\n";
ok($t->wait_for(5, sub { v(scrape(), 'projkey_store_up', zone => 'b') == 1 }),
    'b: store up again');

# keys past their expiry count as expired, whatever their stored status,
# from worker 0's next flush; a request with one counts as expired

my $me = scrape();
my $soon = strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time + 2));
my @exp = map { $api->as(user => 'alice')->call('POST', 'keys',
    { name => "exp$_", expires_at => $soon }) } 1 .. 2;
$api->call('PATCH', "keys/$exp[1]{json}{key}{id}", { status => 'disabled' });
my $kv = sub { v($_[0], 'projkey_keys', zone => 'keys', status => $_[1]) };
ok($t->wait_for(8, sub { $kv->(scrape(), 'expired') == 2 }),
    'keys: 2 expired once past expires_at');
my $mx = scrape();
is($kv->($mx, 'active'), $kv->($me, 'active'),
    'keys: the expired active one is not active');
is($kv->($mx, 'disabled'), $kv->($me, 'disabled'),
    'keys: nor is the expired disabled one disabled');
like($t->get('/api/x', Authorization => "Bearer $exp[0]{json}{secret}"),
    qr/"api_key_expired"/, 'the expired key is rejected as expired');
is(d(scrape(), $mx, 'projkey_requests_total', zone => 'keys',
    status => 'expired'), 1, 'requests: 1 expired');
$api->call('PATCH', "keys/$exp[0]{json}{key}{id}", { expires_at => undef });
ok($t->wait_for(8, sub { my $m = scrape(); $kv->($m, 'expired') == 1
    && $kv->($m, 'active') == $kv->($me, 'active') + 1 }),
    'expiry cleared: active again');

# methods

like($t->request('HEAD', '/metrics'), qr/^HTTP\/1\.1 200 .*\r\n\r\n\z/s,
    'HEAD: 200, no body');
$r = $t->request('POST', '/metrics', '');
like($r, qr/^HTTP\/1\.1 405 /, 'POST: 405');
like($r, qr/^Allow: GET, HEAD\r$/mi, 'POST: Allow');

###############################################################################

$t->done();

###############################################################################

# a series' key: name{label="value",...} with the labels sorted
sub sk {
    my ($name, %l) = @_;
    return $name . '{' . join(',', map { "$_=$l{$_}" } sort keys %l) . '}';
}

sub v {
    my ($m, $name, %l) = @_;
    my $k = sk($name, %l);
    return $m->{v}{$k} // die "no series $k\n";
}

sub d { my ($m, $o, @k) = @_; return v($m, @k) - v($o, @k); }

# GET /metrics, parsed by prom-parse.py: {families, v => {series => value}}
sub scrape {
    my $raw = $t->get('/metrics');
    my (undef, undef, $b) = Projkey::Test::parse_response($raw);

    my $in = $t->testdir . '/scrape.txt';
    $t->write_file('scrape.txt', $b);

    my ($rc, $out, $err) = $t->run_cmd('sh', '-c',
        "/usr/bin/python3 $FindBin::Bin/lib/prom-parse.py < '$in'");
    if ($rc != 0) {
        diag("prom-parse.py: $err");
        return undef;
    }

    my $f = JSON::PP->new->decode($out);
    my %v;
    for my $fam (@$f) {
        $v{sk($_->[0], %{$_->[1]})} = $_->[2] for @{$fam->{samples}};
    }

    return { families => $f, v => \%v };
}

sub send_n {
    my ($n, $uri, @h) = @_;
    $t->get($uri, @h) for 1 .. $n;
}

###############################################################################
