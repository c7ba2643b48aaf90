#!/usr/bin/perl

# projkey: an access-phase module like the others: satisfy any / all with
# allow and deny, and auth_delay.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time);

use Projkey::Test;

###############################################################################

my $t = Projkey::Test->new()->plan(15);

my ($id, $key) = $t->create_key('satisfied');

$t->write_config(<<'EOF')->run();
http {
    projkey_zone keys:4m db=%%TESTDIR%%/keys.db sync=200ms;

    proxy_set_header X-Projkey-Origin $projkey_origin;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /any/ {
            satisfy any;
            allow 127.0.0.1;
            deny all;
            projkey keys;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }

        location /any-deny/ {
            satisfy any;
            deny all;
            projkey keys;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }

        location /all/ {
            satisfy all;
            allow 127.0.0.1;
            deny all;
            projkey keys;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }

        location /all-deny/ {
            deny all;
            projkey keys;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }

        location /delay/ {
            auth_delay 500ms;
            projkey keys;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;

        location / {
            return 200 "origin=$http_x_projkey_origin status=ok\n";
        }
    }
}

EOF

###############################################################################

# satisfy any: the address is enough; a key still gives its identity

like($t->get('/any/'), qr/ 200 .*origin= status=ok/s, 'any: no key, allowed');
like(call('/any/', 'Bearer foo'), qr/ 200 .*origin= status=ok/s,
    'any: bad key, allowed by address');
like(call('/any/', "Bearer $key"), qr/ 200 .*origin=API status=ok/s,
    'any: valid key');

my $r = $t->get('/any-deny/');
like($r, qr/^HTTP\/1\.1 401 /, 'any, address denied: no key 401');
like($r, qr/^WWW-Authenticate: Bearer realm="projkey"/m,
    'any, address denied: WWW-Authenticate');
like($r, qr/"code":\s*"missing_api_key"/, 'any, address denied: JSON body');
like(call('/any-deny/', "Bearer $key"), qr/ 200 .*origin=API /s,
    'any, address denied: valid key');

# satisfy all: both are needed

like($t->get('/all/'), qr/^HTTP\/1\.1 401 /, 'all: no key');
like(call('/all/', 'Bearer foo'), qr/^HTTP\/1\.1 401 .*invalid_api_key/s,
    'all: bad key');
like(call('/all/', "Bearer $key"), qr/ 200 .*origin=API /s, 'all: valid key');
like(call('/all-deny/', "Bearer $key"), qr/^HTTP\/1\.1 403 /,
    'all, address denied: valid key 403');
unlike(call('/all-deny/', "Bearer $key"), qr/status=ok/,
    'all, address denied: backend not reached');

# auth_delay applies to rejected keys only

my $start = time;
$r = call('/delay/', 'Bearer foo');
my $took = time - $start;
like($r, qr/^HTTP\/1\.1 401 /, 'auth_delay: rejected');
cmp_ok($took, '>=', 0.45, 'auth_delay: rejection delayed');

$start = time;
call('/delay/', "Bearer $key");
cmp_ok(time - $start, '<', 0.4, 'auth_delay: valid key not delayed');

###############################################################################

$t->done();

###############################################################################

sub call {
    my ($uri, $auth) = @_;
    return $t->get($uri, Authorization => $auth);
}

###############################################################################
