#!/usr/bin/perl

# projkey: changes made with the CLI while nginx runs reach every worker
# within the sync interval.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time);

use Projkey::Test;

###############################################################################

my $t = Projkey::Test->new()->plan(21);

my ($id0, $key0) = $t->create_key('before start');

$t->write_config(<<'EOF')->run();
http {
    projkey_zone keys:4m db=%%TESTDIR%%/keys.db sync=200ms;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /api/ {
            projkey keys;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
            proxy_set_header X-Projkey-Origin   $projkey_origin;
            proxy_set_header X-Projkey-Key-Id   $projkey_key_id;
            proxy_set_header X-Projkey-Key-Name $projkey_key_name;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;

        location / {
            return 200 "origin=$http_x_projkey_origin id=$http_x_projkey_key_id name=$http_x_projkey_key_name status=ok\n";
        }
    }
}

EOF

###############################################################################

like(call($key0), qr/ 200 .*origin=API /s, 'key made before start');

# create

my ($id, $key) = $t->create_key('made while running');
my ($ok, $took) = until_match($key, qr/^HTTP\/1\.1 200 /);
ok($ok, 'created key usable');
cmp_ok($took, '<', 1, 'created key usable within 1 s');
like(call($key), qr/name=made while running status=ok/, 'name of created key');

# disable

my ($rc) = $t->cli('disable', $id);
is($rc, 0, 'cli disable');
($ok, $took) = until_match($key, qr/^HTTP\/1\.1 401 /);
ok($ok, 'disabled key rejected');
cmp_ok($took, '<', 1, 'disabled key rejected within 1 s');
like(call($key), qr/"api_key_disabled"/, 'disabled code');

# enable

($rc) = $t->cli('enable', $id);
is($rc, 0, 'cli enable');
($ok, $took) = until_match($key, qr/^HTTP\/1\.1 200 /);
ok($ok && $took < 1, 'enabled key accepted within 1 s');

# rename

($rc) = $t->cli('rename', $id, 'renamed key');
is($rc, 0, 'cli rename');
($ok, $took) = until_match($key, qr/name=renamed key status=ok/);
ok($ok && $took < 1, 'backend sees the new name within 1 s');

# delete

($rc) = $t->cli('delete', $id);
is($rc, 0, 'cli delete');
($ok, $took) = until_match($key, qr/^HTTP\/1\.1 401 /);
ok($ok && $took < 1, 'deleted key rejected within 1 s');
like(call($key), qr/"invalid_api_key"/, 'deleted key is invalid');

# a burst of changes, and flapping that ends active

my @keys = map { ($t->create_key("burst $_"))[1] } 1 .. 20;
($ok) = until_match($keys[-1], qr/^HTTP\/1\.1 200 /);
is(scalar(grep { call($_) =~ /^HTTP\/1\.1 200 / } @keys), 20,
    'burst of 20 keys usable');

$t->cli('disable', $id0);
$t->cli('enable', $id0);
$t->cli('disable', $id0);
$t->cli('enable', $id0);
select undef, undef, undef, 0.8;
like(call($key0), qr/ 200 /, 'flapping key ends active');

# nothing of the above touched the first key's identity

like(call($key0), qr/id=\Q$id0\E name=before start /, 'first key intact');

# the deleted key stays rejected

select undef, undef, undef, 0.5;
like(call($key), qr/^HTTP\/1\.1 401 /, 'deleted key stays rejected');

# a change made by hand with the sqlite3 shell is applied too

my ($hid, $hkey) = $t->create_key('by hand');
until_match($hkey, qr/^HTTP\/1\.1 200 /);
$t->run_cmd('sqlite3', $t->db, "UPDATE keys SET status = 2 WHERE id = '$hid'");
($ok, $took) = until_match($hkey, qr/"api_key_disabled"/);
ok($ok && $took < 1, 'sqlite3 UPDATE status: disabled within 1 s');
$t->run_cmd('sqlite3', $t->db, "DELETE FROM keys WHERE id = '$hid'");
($ok, $took) = until_match($hkey, qr/"invalid_api_key"/);
ok($ok && $took < 1, 'sqlite3 DELETE: rejected within 1 s');

###############################################################################

$t->done();

###############################################################################

sub call {
    my ($k) = @_;
    return $t->get('/api/', Authorization => "Bearer $k");
}

# polls for up to 3 s; (matched, seconds it took)
sub until_match {
    my ($k, $re) = @_;
    my $start = time;
    my $ok = $t->wait_for(3, sub { call($k) =~ $re });
    return ($ok, time - $start);
}

###############################################################################
