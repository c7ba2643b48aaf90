#!/usr/bin/perl

# projkey: last_used_at.  A new key has never been used (null); a key used
# shows the time of its use within 60 s plus the sync interval, in the API
# and in the database; a key not used stays null.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use POSIX qw(strftime);
use Time::HiRes qw(time sleep);

use Projkey::Test;
use Projkey::Admin;

###############################################################################

my $t = Projkey::Test->new()->plan(12);

$t->write_config(<<'EOF');
http {
    projkey_zone keys:4m db=%%TESTDIR%%/keys.db sync=1s;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /admin/ {
            projkey_admin         keys;
            projkey_admin_user    $http_x_user;
            projkey_admin_project $http_x_project;
        }

        location /api/ {
            projkey keys;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
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

# start at the beginning of a second, so that the first use below falls in
# the very second the zone was made
sleep 0.01 while time - int(time) > 0.05;
$t->run();

###############################################################################

my $api = Projkey::Admin->new($t, user => 'alice', project => 'a');

# nginx has just started: "early" is used within its first second, "used"
# a little later, "idle" never
my ($early, $early_secret) = $api->create('early');
my ($used, $secret) = $api->create('used');
my ($idle) = $api->create('idle');
ok(exists $used->{last_used_at} && !defined $used->{last_used_at},
    'create: last_used_at is null');
ok(!defined $api->call('GET', "keys/$used->{id}")->{json}{key}{last_used_at},
    'get: null before any use');

my $early_start = rfc3339(int time);
like($t->get('/api/', Authorization => "Bearer $early_secret"), qr/ 200 /,
    'a key used right after the start');
my $early_end = rfc3339(int time);

sleep 2;

my $start = rfc3339(int time);
like($t->get('/api/', Authorization => "Bearer $secret"), qr/ 200 /,
    'a key used 2 s later');
my $end_of_use = rfc3339(int time);

# within 60 s plus the sync interval (1 s), and a little slack
my $deadline = time + 63;
my ($seen, $seen_early);
while (time < $deadline) {
    my %k = map { $_->{id} => $_->{last_used_at} } @{$api->list};
    ($seen, $seen_early) = @k{$used->{id}, $early->{id}};
    last if defined $seen && defined $seen_early;
    sleep 1;
}

ok(defined $seen, 'last_used_at set within 60 s + sync')
    or diag('still null after 63 s');
like($seen // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'an RFC 3339 time');
ok(defined $seen && $seen ge $start && $seen le $end_of_use,
    'the time of the use')
    or diag(($seen // 'null') . " not in [$start, $end_of_use]");
ok(defined $seen_early && $seen_early ge $early_start
    && $seen_early le $early_end,
    'a use in the first second after the start is recorded too')
    or diag(($seen_early // 'null') . " not in [$early_start, $early_end]");

my %list = map { $_->{id} => $_ } @{$api->list};
ok(!defined $list{$idle->{id}}{last_used_at}, 'an unused key stays null');
is($list{$used->{id}}{updated_at}, $used->{updated_at},
    'a use is not an update');

my $db = $t->cli_json('--project', 'a', 'show', $used->{id});
my $k = ref $db eq 'HASH' ? $db->{key} // $db : {};
ok(defined $seen && ($k->{last_used_at} // '') eq $seen,
    'the database holds it');

$t->restart();
my $after = $api->call('GET', "keys/$used->{id}")->{json}{key}{last_used_at};
ok(defined $seen && ($after // '') eq $seen, 'kept across a restart');

###############################################################################

$t->done();

###############################################################################

sub rfc3339 { strftime('%Y-%m-%dT%H:%M:%SZ', gmtime $_[0]) }

###############################################################################
