#!/usr/bin/perl

# projkey: what an admin answer says of a key holds in the zone when the
# answer is sent, also where the admin call itself changed nothing: a
# PATCH to what the key already is, after another process changed it; a
# rolled key's previous secret ends with the key's own expiry; an expiry
# set by hand to 0 is "expired" in both the answer and the check.

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

my $t = Projkey::Test->new()->plan(15);

# a long sync: only the admin call itself can bring the zone up to date
$t->write_config(<<'EOF')->run();
http {
    projkey_zone keys:4m db=%%TESTDIR%%/keys.db sync=30s;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /admin/ {
            projkey_admin         keys;
            projkey_admin_user    $http_x_user;
        }

        location /api/ {
            projkey keys;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;
        return 200 "ok\n";
    }
}
EOF

sub ts { strftime('%Y-%m-%dT%H:%M:%SZ', gmtime($_[0])) }

sub status_of {
    my ($secret) = @_;
    my $r = $t->get('/api/x', Authorization => "Bearer $secret");
    return $r =~ m{^HTTP/1\.1 (\d+)} ? $1 : 0;
}

my $api = Projkey::Admin->new($t, user => 'alice');

###############################################################################

# the CLI disables a key; a PATCH to "disabled" changes nothing in the
# database, but its answer says disabled: the zone must say so too

my $r = $api->call('POST', 'keys', { name => 'k' });
my ($id, $secret) = ($r->{json}{key}{id}, $r->{json}{secret});
is(status_of($secret), 200, 'a new key works');

my ($rc) = $t->cli('disable', $id);
is($rc, 0, 'disabled by the CLI');
is(status_of($secret), 200, 'not yet in the zone (sync=30s)');

$r = $api->call('PATCH', "keys/$id", { status => 'disabled' });
is($r->{json}{key}{status}, 'disabled', 'a PATCH to what it is: disabled');
is(status_of($secret), 401, 'and rejected when the answer is sent');

# the same with a name the CLI gave it: the answer's name is the zone's

($rc) = $t->cli('rename', $id, 'renamed');
$r = $api->call('PATCH', "keys/$id", { name => 'renamed',
    status => 'disabled' });
is($r->{json}{key}{name}, 'renamed', 'a PATCH to what the CLI made it');
is($api->call('PATCH', "keys/$id", { status => 'active' })->{status}, 200,
    'enabled again');
is(status_of($secret), 200, 'works again');

# the previous secret of a rolled key never outlives the key

my $at = floor(time) + 3;
$r = $api->call('POST', 'keys', { name => 'x', expires_at => ts($at) });
my ($xid, $old) = ($r->{json}{key}{id}, $r->{json}{secret});
$r = $api->call('POST', "keys/$xid/roll",
    { previous_expires_at => ts(time + 3600) });
my $new = $r->{json}{secret};
is(status_of($old), 200, 'rolled: the previous secret works until T');
sleep($at + 1.2 - time);
is($api->call('GET', "keys/$xid")->{json}{key}{status}, 'expired',
    'the key has expired');
is(status_of($old), 401, 'and so has its previous secret, T or not');

# an expiry of 0 set by hand: expired for the answer and for the check

$r = $api->call('POST', 'keys', { name => 'z' });
my ($zid, $zsecret) = ($r->{json}{key}{id}, $r->{json}{secret});
$t->run_cmd('sqlite3', $t->db, "UPDATE keys SET expires_at = 0"
    . " WHERE id = '$zid'");
$r = $api->call('PATCH', "keys/$zid", { status => 'active' });
ok($r->{json}{key}{status} eq 'expired' && status_of($zsecret) == 401,
    'expires_at = 0 by hand: expired in the answer and at the check');

# the list's status filter says what KEY says: expired whatever the stored
# status (the x key is stored active, the z key too; k is active)

$api->call('PATCH', "keys/$xid", { status => 'disabled' });
my %ids = map { my $st = $_;
    ($st => join ',', sort map { $_->{id} }
        @{$api->call('GET', "keys?status=$st")->{json}{keys} // []}) }
    qw/active disabled expired/;
is($ids{expired}, join(',', sort $xid, $zid),
    'status=expired: both expired keys, the disabled one too');
is($ids{active}, $id, 'status=active: only the one not expired');
is($ids{disabled}, '', 'status=disabled: not the expired disabled one');

###############################################################################

$t->done();
