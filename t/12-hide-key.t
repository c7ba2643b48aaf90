#!/usr/bin/perl

# projkey: projkey_hide_key, the Authorization header that carried a key.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;

use Projkey::Test;

###############################################################################

my $t = Projkey::Test->new()->plan(10);

my ($id, $key) = $t->create_key('hidden');

$t->write_config(<<'EOF')->run();
http {
    projkey_zone keys:4m db=%%TESTDIR%%/keys.db sync=200ms;

    proxy_set_header X-Projkey-Origin   $projkey_origin;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /api/ {
            projkey keys;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }

        location /show/ {
            projkey keys;
            projkey_hide_key off;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }

        location /opt/ {
            projkey keys optional;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_2%%;

        projkey keys;
        projkey_hide_key off;

        location / {
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }

        location /hide/ {
            projkey_hide_key on;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;

        location / {
            return 200 "origin=$http_x_projkey_origin auth=$http_authorization status=ok\n";
        }
    }
}

EOF

my $p2 = $t->port(2);

###############################################################################

like(auth('/api/', "Bearer $key"), qr/ 200 .*origin=API auth= status=ok/s,
    'hidden by default');
like(auth('/api/', "bearer  $key"), qr/ 200 .*origin=API auth= status=ok/s,
    'hidden, lower case scheme and two spaces');
unlike(auth('/api/', "Bearer $key"), qr/\Q$key\E/, 'key not in response');

like(auth('/show/', "Bearer $key"),
    qr/ 200 .*origin=API auth=Bearer \Q$key\E status=ok/s,
    'projkey_hide_key off');

like(auth('/opt/', "Bearer $key"), qr/ 200 .*origin=API auth= status=ok/s,
    'optional, key hidden');
like(auth('/opt/', 'Bearer foo'), qr/ 200 .*origin= auth=Bearer foo status=ok/s,
    'optional, foreign bearer passed');
like(auth('/opt/', 'Basic dXNlcjpwYXNz'),
    qr/ 200 .*origin= auth=Basic dXNlcjpwYXNz status=ok/s,
    'optional, basic passed');

like(auth('/', "Bearer $key", $p2),
    qr/ 200 .*origin=API auth=Bearer \Q$key\E status=ok/s,
    'off at server level');
like(auth('/hide/', "Bearer $key", $p2),
    qr/ 200 .*origin=API auth= status=ok/s, 'on in a location');

like($t->request('POST', '/api/', 'x', Authorization => "Bearer $key"),
    qr/ 200 .*origin=API auth= status=ok/s, 'hidden on POST');

###############################################################################

$t->done();

###############################################################################

sub auth {
    my ($uri, $value, $port) = @_;
    return $t->get($uri, (defined $value ? (Authorization => $value) : ()),
        (defined $port ? (-port => $port) : ()));
}

###############################################################################
