#!/usr/bin/perl

# projkey: "projkey NAME optional" and "projkey off".

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;

use Projkey::Test;

###############################################################################

my $t = Projkey::Test->new()->plan(27);

my ($id, $key) = $t->create_key('optional');
my ($did, $dkey) = $t->create_key('disabled');
die "projkey disable failed\n" if ($t->cli('disable', $did))[0];

my (undef, $ukey) = $t->create_key('elsewhere',
    db => $t->testdir . '/other.db');

$t->write_config(<<'EOF')->run();
http {
    projkey_zone keys:4m db=%%TESTDIR%%/keys.db sync=200ms;

    proxy_set_header X-Projkey-Origin   $projkey_origin;
    proxy_set_header X-Projkey-Key-Id   $projkey_key_id;
    proxy_set_header X-Projkey-Key-Name $projkey_key_name;
    proxy_set_header X-Projkey-Project  $projkey_project;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /opt/ {
            projkey keys optional;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }

        # internal redirects into a protected location are checked there
        location /api/ {
            projkey keys;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }

        location /rewrite-off/ {
            projkey off;
            rewrite ^ /api/from-off last;
        }

        location /rewrite-opt/ {
            projkey keys optional;
            rewrite ^ /api/from-opt last;
        }

        location /errpage/ {
            projkey off;
            error_page 404 = /api/from-error-page;
            return 404;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_2%%;

        projkey keys;

        location / {
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }

        location /off/ {
            projkey off;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }

        location /opt/ {
            projkey keys optional;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;
        access_log %%TESTDIR%%/backend.log;

        location / {
            return 200 "origin=$http_x_projkey_origin id=$http_x_projkey_key_id name=$http_x_projkey_key_name project=$http_x_projkey_project auth=$http_authorization status=ok\n";
        }
    }
}

EOF

my $p2 = $t->port(2);

###############################################################################

# optional: no project key => untouched

like($t->get('/opt/none'), qr/ 200 .*origin= id= name= project= auth= status=ok/s,
    'optional, no Authorization');
like(auth('/opt/basic', 'Basic dXNlcjpwYXNz'),
    qr/ 200 .*origin= id= .*auth=Basic dXNlcjpwYXNz status=ok/s,
    'optional, Basic passed as is');
like(auth('/opt/foo', 'Bearer foo'),
    qr/ 200 .*origin= id= .*auth=Bearer foo status=ok/s,
    'optional, Bearer foo passed as is');
like(auth('/opt/jwt', 'bearer eyJhbGciOi.eyJzdWIi.c2ln'),
    qr/ 200 .*origin= .*auth=bearer eyJhbGciOi.eyJzdWIi.c2ln status=ok/s,
    'optional, foreign JWT passed as is');

# optional: a project key must be valid

like(auth('/opt/key', "Bearer $key"),
    qr/ 200 .*origin=API id=\Q$id\E name=optional project=default /s,
    'optional, valid key');

my $bad_sum = substr($key, 0, -1) . (substr($key, -1) eq 'A' ? 'B' : 'A');

rejected(auth('/opt/malformed', "Bearer $bad_sum"), 'invalid_api_key',
    'optional, bad checksum');
rejected(auth('/opt/short', 'Bearer ' . substr($key, 0, 40)),
    'invalid_api_key', 'optional, truncated key');
rejected(auth('/opt/unknown', "Bearer $ukey"), 'invalid_api_key',
    'optional, unknown key');
rejected(auth('/opt/disabled', "Bearer $dkey"), 'api_key_disabled',
    'optional, disabled key');

# a protected server with "projkey off" and "optional" locations

rejected(auth('/strict', undef, $p2), 'missing_api_key',
    'server level projkey, no key');
like(auth('/strict', "Bearer $key", $p2), qr/ 200 .*origin=API /s,
    'server level projkey, valid key');
rejected(auth('/strict', 'Bearer foo', $p2), 'invalid_api_key',
    'server level projkey, foreign token');

like(auth('/off/none', undef, $p2), qr/ 200 .*origin= id= .*status=ok/s,
    'projkey off, no key');
like(auth('/off/bad', "Bearer $bad_sum", $p2),
    qr/ 200 .*origin= id= .*status=ok/s, 'projkey off, bad key passes');
like(auth('/off/key', "Bearer $key", $p2),
    qr/ 200 .*origin= id= name= project= /s,
    'projkey off, valid key gives no identity');

like(auth('/opt/none', undef, $p2), qr/ 200 .*origin= .*status=ok/s,
    'optional location in a protected server, no key');
like(auth('/opt/key', "Bearer $key", $p2), qr/ 200 .*origin=API /s,
    'optional location in a protected server, valid key');
rejected(auth('/opt/disabled', "Bearer $dkey", $p2), 'api_key_disabled',
    'optional location in a protected server, disabled key');

# internal redirects from an off or optional location into a protected one

rejected($t->get('/rewrite-off/'), 'missing_api_key',
    'rewrite from off into protected, no key');
like(auth('/rewrite-off/', "Bearer $key"), qr/ 200 .*origin=API /s,
    'rewrite from off into protected, valid key');
rejected($t->get('/rewrite-opt/'), 'missing_api_key',
    'rewrite from optional into protected, no key');
rejected(auth('/rewrite-opt/', 'Bearer foo'), 'invalid_api_key',
    'rewrite from optional into protected, foreign token');
rejected($t->get('/errpage/'), 'missing_api_key',
    'error_page into protected, no key');
like(auth('/errpage/', "Bearer $key"), qr/ 200 .*origin=API /s,
    'error_page into protected, valid key');

###############################################################################

$t->stop();

my $log = $t->read_file('backend.log');
unlike($log, qr{/opt/(malformed|short|unknown|disabled)},
    'rejected optional requests did not reach the backend');
my $m = () = $log =~ m{"GET /api/from-}g;
is($m, 2, 'rejected internal redirects did not reach the backend');
my $n = () = $log =~ m{"GET /strict }g;
is($n, 1, 'rejected strict requests did not reach the backend');

$t->done();

###############################################################################

sub auth {
    my ($uri, $value, $port) = @_;
    return $t->get($uri, (defined $value ? (Authorization => $value) : ()),
        (defined $port ? (-port => $port) : ()));
}

sub rejected {
    my ($r, $code, $name) = @_;
    like($r, qr/^HTTP\/1\.1 401 .*"code":\s*"$code".*\}/s, $name);
}

###############################################################################
