#!/usr/bin/perl

# projkey: identity headers sent by a client never reach the backend as
# trusted values, whatever the location's mode.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;

use Projkey::Test;

###############################################################################

my $t = Projkey::Test->new()->plan(14);

my ($id, $key) = $t->create_key('real name');

$t->write_config(<<'EOF')->run();
http {
    projkey_zone keys:4m db=%%TESTDIR%%/keys.db sync=200ms;

    proxy_set_header X-Projkey-Origin   $projkey_origin;
    proxy_set_header X-Projkey-Key-Id   $projkey_key_id;
    proxy_set_header X-Projkey-Key-Name $projkey_key_name;
    proxy_set_header X-Projkey-Project  $projkey_project;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /api/ {
            projkey keys;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }

        location /opt/ {
            projkey keys optional;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }

        location /off/ {
            projkey off;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;
        access_log %%TESTDIR%%/backend.log;

        location / {
            return 200 "origin=$http_x_projkey_origin id=$http_x_projkey_key_id name=$http_x_projkey_key_name project=$http_x_projkey_project status=ok\n";
        }
    }
}

EOF

my @spoof = (
    'X-Projkey-Origin'   => 'API',
    'X-Projkey-Key-Id'   => 'evil-id',
    'X-Projkey-Key-Name' => 'evil name',
    'X-Projkey-Project'  => 'other',
);

my @lower = map { my $i = $_; $i % 2 ? $spoof[$i] : lc $spoof[$i] } 0 .. 7;

my @underscore = map {
    my $i = $_;
    (my $n = $spoof[$i]) =~ tr/-/_/;
    $i % 2 ? $spoof[$i] : $n;
} 0 .. 7;

my $empty = qr/ 200 .*origin= id= name= project= status=ok/s;
my $real = qr/ 200 .*origin=API id=\Q$id\E name=real name project=default /s;

###############################################################################

like($t->get('/api/a', @spoof, Authorization => "Bearer $key"), $real,
    'protected, valid key: the key wins');
like($t->get('/api/b', Authorization => "Bearer $key", @spoof), $real,
    'protected, spoof after the key');
like($t->get('/api/c', @spoof), qr/^HTTP\/1\.1 401 /,
    'protected, spoof without key: 401');
like($t->get('/api/d', @spoof, Authorization => 'Bearer foo'),
    qr/^HTTP\/1\.1 401 /, 'protected, spoof with foreign token: 401');

like($t->get('/opt/a', @spoof), $empty, 'optional, no key');
like($t->get('/opt/b', @spoof, Authorization => 'Bearer foo'), $empty,
    'optional, foreign token');
like($t->get('/opt/c', @lower), $empty, 'optional, lower case names');
like($t->get('/opt/d', @underscore), $empty, 'optional, underscores');
like($t->get('/opt/e', @spoof, @spoof), $empty, 'optional, twice');
like($t->get('/opt/f', @spoof, Authorization => "Bearer $key"), $real,
    'optional, valid key: the key wins');

like($t->get('/off/a', @spoof), $empty, 'off');
like($t->get('/off/b', @underscore, @lower), $empty,
    'off, underscores and lower case');
like($t->get('/off/c', @spoof, Authorization => "Bearer $key"), $empty,
    'off, valid key gives no identity');

###############################################################################

$t->stop();

unlike($t->read_file('backend.log'), qr{/api/[cd] }, 'rejected not proxied');

$t->done();

###############################################################################
