#!/usr/bin/perl

# projkey: a node on libpq's multi-host URI with
# target_session_attrs=read-write follows a promoted standby.  A primary
# and its streaming standby (pg_basebackup) from t/lib/Projkey/Pg.pm; the
# node's URI names both.  Once the standby has replayed everything, the
# primary stops and the standby is promoted: the node keeps its keys,
# reaches the new primary, applies what is committed there from the next
# revision on (no revision twice, none missed: as the standby is on a new
# timeline, which may lack the old primary's last commits under the same
# numbers, the zone is read again from it in full, once), and its admin
# writes go there.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep time);

use Projkey::Test;
use Projkey::Admin;
use Projkey::Pg;

###############################################################################

my $t = Projkey::Test->new()->plan(16);

my $primary = Projkey::Pg->new();
my ($rc) = $t->cli({ db => $primary->uri }, 'init');
die "projkey init failed\n" if $rc;

my ($id1, $k1) = $t->create_key('before', db => $primary->uri);

my $standby = $primary->standby();

my $both = sprintf 'postgresql://%s:%s@127.0.0.1:%d,127.0.0.1:%d/%s'
    . '?target_session_attrs=read-write', $primary->user, $primary->password,
    $primary->port, $standby->port, $primary->database;

$t->write_config(<<"EOF")->run();
http {
    projkey_zone keys:4m db=$both sync=300ms node=f;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /admin/ {
            projkey_admin         keys;
            projkey_admin_user    tester;
        }

        location /metrics { projkey_metrics; }

        location /api/ {
            projkey keys;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
            proxy_set_header X-Name \$projkey_key_name;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;
        return 200 "ok \$http_x_name\\n";
    }
}

EOF

my $api = Projkey::Admin->new($t);

like(api($k1), qr/ 200 .*ok before/s, 'the node loaded the primary\'s key');

my $r = $api->call('POST', 'keys', { name => 'on the primary' });
is($r->{status}, 201, 'an admin write goes to the primary');
my $k2 = $r->{json}{secret};
my $rev = $r->{json}{revision};

is(rev_of($standby), rev_of($primary), 'the standby has replayed it all')
    or diag($standby->log);
is($standby->psql('SELECT pg_is_in_recovery()', db => 'projkey'), "t\n",
    'and is a standby');

# the switch

$primary->halt();
$standby->promote();

is($standby->psql('SELECT pg_is_in_recovery()', db => 'projkey'), "f\n",
    'the standby is promoted');

like(api($k1), qr/ 200 /, 'during the switch the node keeps its keys');
like(api($k2), qr/ 200 /, 'all of them');

my ($id3, $k3) = $t->create_key('on the new primary', db => $standby->uri);
ok($t->wait_for(15, sub { api($k3) =~ / 200 .*ok on the new primary/s }),
    'a key made on the new primary reaches the node');

$r = $t->wait_for(10, sub {
    my $r = $api->call('POST', 'keys', { name => 'after the switch' });
    $r->{status} == 201 ? $r : undef;
});
ok($r, 'the node\'s admin writes go to the new primary');
is($r ? $r->{json}{revision} : 0, $rev + 2,
    'its revision follows, no gap, none twice');
like(api($r ? $r->{json}{secret} : 'none'), qr/ 200 .*ok after the switch/s,
    'in force at once');

is(rev_of($standby), $rev + 2, 'the new primary has it');
ok($t->wait_for(5, sub { metric('projkey_revision') == $rev + 2 }),
    'the node is at the same revision');

($rc) = $t->cli({ db => $standby->uri }, 'disable', $id1);
ok($t->wait_for(5, sub { api($k1) =~ /api_key_disabled/ }),
    'a disable on the new primary reaches the node');

my @full = $t->error_log =~ /now matches database .*: \d+ keys, 0 removed/g;
is(scalar @full, 1,
    'a new timeline: every key read again from the new primary, once');
like($t->error_log, qr/is reachable again|received again/,
    'the node said it reached the database again');

###############################################################################

sub api {
    my ($key) = @_;
    return $t->http("GET /api/ HTTP/1.0\r\nHost: localhost\r\n"
        . "Authorization: Bearer $key\r\n\r\n");
}

sub rev_of {
    my ($pg) = @_;
    my $deadline = time + 10;
    my $v;

    # a standby replays asynchronously: what it has settles quickly
    while (time < $deadline) {
        $v = $pg->psql('SELECT value FROM projkey.revision', db => 'projkey');
        chomp $v;
        last if $pg eq $primary || $v == rev_now();
        sleep 0.05;
    }

    return $v;
}

sub rev_now {
    my $v = $primary->{running}
        ? $primary->psql('SELECT value FROM projkey.revision', db => 'projkey')
        : $standby->psql('SELECT value FROM projkey.revision', db => 'projkey');
    chomp $v;
    return $v;
}

sub metric {
    my ($name) = @_;
    my $m = $t->http("GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n");
    return $m =~ /^\Q$name\E\{zone="keys"\} (\d+)/m ? $1 : -1;
}

###############################################################################
