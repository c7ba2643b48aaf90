#!/usr/bin/perl

# projkey: internal redirects into and out of protected locations
# (rewrite ... last, error_page, try_files, X-Accel-Redirect), a
# subrequest (auth_request) to a protected location, "return" in a
# protected location, and satisfy any.  What nginx does by design is
# asserted as it is and documented in docs/security.md:
# - subrequests skip the access phase, so the key check of a location
#   reached by auth_request (or SSI, mirror, addition) does not run;
# - the rewrite phase (rewrite, return, set) runs before the access phase,
#   so "return" or "rewrite ... last" in a protected location acts on
#   requests without a key.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;

use Projkey::Test;

###############################################################################

my $t = Projkey::Test->new()->has(qw/auth_request/)->plan(41);

my ($id, $key) = $t->create_key('real');
my ($did, $dkey) = $t->create_key('disabled');
die "projkey disable failed\n" if ($t->cli('disable', $did))[0];
my ($gid, $gkey) = $t->create_key('deleted');
die "projkey delete failed\n" if ($t->cli('delete', $gid))[0];

$t->write_config(<<'EOF')->run();
http {
    projkey_zone keys:4m db=%%TESTDIR%%/keys.db sync=200ms;

    proxy_set_header X-Projkey-Origin $projkey_origin;
    proxy_set_header X-Projkey-Key-Id $projkey_key_id;

    server {
        listen 127.0.0.1:%%PORT_0%%;
        root %%TESTDIR%%;

        location /api/ {
            projkey keys;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }

        # into a protected location

        location /in-rewrite/ {
            projkey off;
            rewrite ^ /api/from-rewrite last;
        }

        location /in-errpage/ {
            projkey off;
            error_page 418 = /api/from-errpage;
            return 418;
        }

        location /in-tryfiles/ {
            projkey off;
            try_files /nonexistent /api/from-tryfiles;
        }

        location /in-accel/ {
            projkey off;
            proxy_pass http://127.0.0.1:%%PORT_1%%/accel/;
        }

        # out of a protected location

        location /out-rewrite/ {
            projkey keys;
            rewrite ^ /free/from-rewrite last;
        }

        location /out-tryfiles/ {
            projkey keys;
            try_files /nonexistent /free/from-tryfiles;
        }

        location /out-404/ {
            projkey keys;
            error_page 404 = /free/from-404;
            proxy_intercept_errors on;
            proxy_pass http://127.0.0.1:%%PORT_1%%/missing/;
        }

        location /out-401/ {
            projkey keys;
            error_page 401 = /free/login;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }

        location /free/ {
            projkey off;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }

        # a rejected key checked again: the checksum verdict goes with it

        location /out-401-again/ {
            projkey keys;
            error_page 401 = /again/x;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }

        location /again/ {
            projkey keys;
            add_header X-Status $projkey_status always;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }

        # "return" in the rewrite phase, before the access phase

        location /ret/ {
            projkey keys;
            return 200 "returned origin=[$projkey_origin]\n";
        }

        # a subrequest to a protected location

        location /sub/ {
            projkey off;
            auth_request /api/auth-check;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }

        # satisfy any with allow 127.0.0.1: the address is enough

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
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;
        access_log %%TESTDIR%%/backend.log;

        location /accel/ {
            add_header X-Accel-Redirect /api/from-accel;
            return 200 "";
        }

        location /missing/ {
            return 404;
        }

        location / {
            return 200 "uri=$uri origin=[$http_x_projkey_origin] id=[$http_x_projkey_key_id] status=ok\n";
        }
    }
}

EOF

###############################################################################

my @k = (Authorization => "Bearer $key");
my @d = (Authorization => "Bearer $dkey");
my $api = qr/origin=\[API\] id=\[\Q$id\E\] status=ok/;
my $r;

# into a protected location: the target's check runs

for my $in (qw(rewrite errpage tryfiles accel)) {
    my $r = $t->get("/in-$in/x");
    like($r, qr/^HTTP\/1\.1 401 .*WWW-Authenticate: Bearer realm="projkey"/s,
        "into protected by $in, no key: 401");
    like($r, qr/application\/json.*"code":"missing_api_key"/s,
        "into protected by $in, no key: the JSON error body");
    $r = $t->get("/in-$in/x", @d);
    like($r, qr/^HTTP\/1\.1 401 .*WWW-Authenticate: Bearer realm="projkey", error="invalid_token"/s,
        "into protected by $in, disabled key: 401");
    like($r, qr/application\/json.*"code":"api_key_disabled"/s,
        "into protected by $in, disabled key: the JSON error body");
    like($t->get("/in-$in/x", @k), qr/^HTTP\/1\.1 200 .*$api/s,
        "into protected by $in, valid key: 200 with identity");
}

# out of a protected location

like($t->get('/out-rewrite/x'),
    qr/^HTTP\/1\.1 200 .*uri=\/free\/from-rewrite origin=\[\]/s,
    'rewrite ... last out of a protected location runs before the check: '
    . '200 without identity (documented)');
like($t->get('/out-tryfiles/x'), qr/^HTTP\/1\.1 401 /,
    'try_files out of a protected location: checked first, 401');
like($t->get('/out-tryfiles/x', @k),
    qr/^HTTP\/1\.1 200 .*uri=\/free\/from-tryfiles origin=\[\] id=\[\]/s,
    'try_files out, valid key: 200, no identity in a "projkey off" location');
like($t->get('/out-404/x'), qr/^HTTP\/1\.1 401 /,
    'error_page 404 out of a protected location: checked first, 401');
like($t->get('/out-404/x', @k),
    qr/^HTTP\/1\.1 200 .*uri=\/free\/from-404 origin=\[\] id=\[\]/s,
    'error_page 404 out, valid key: 200, no identity in a "projkey off" location');
like($t->get('/out-401/x', @d),
    qr/^HTTP\/1\.1 200 .*uri=\/free\/login origin=\[\] id=\[\]/s,
    'error_page 401 to an open page: no identity goes with it');

# a miss is checked again after the redirect, where the key may be hidden:
# malformed (bad checksum) and unknown (good checksum) stay what they were

(my $bad = $gkey) =~ s/(.)$/$1 eq 'A' ? 'B' : 'A'/e;
$r = $t->get('/out-401-again/x', Authorization => "Bearer $bad");
like($r, qr/^HTTP\/1\.1 401 .*X-Status: malformed/s,
    'error_page 401 into protected, bad checksum: malformed again');
like($r, qr/"code":"invalid_api_key"/, 'bad checksum: invalid_api_key');
$r = $t->get('/out-401-again/x', Authorization => "Bearer $gkey");
like($r, qr/^HTTP\/1\.1 401 .*X-Status: unknown/s,
    'error_page 401 into protected, deleted key: unknown again');
like($r, qr/"code":"invalid_api_key"/, 'deleted key: invalid_api_key');

# return runs before access

like($t->get('/ret/x'), qr/^HTTP\/1\.1 200 .*returned origin=\[\]/s,
    'return 200 in a protected location answers without a key (documented)');

# a subrequest skips the access phase

$r = $t->get('/sub/x');
like($r, qr/^HTTP\/1\.1 200 .*uri=\/sub\/x origin=\[\]/s,
    'auth_request to a protected location passes without a key: nginx '
    . 'skips access checks in subrequests (documented)');
like($r, qr/^HTTP\/1\.1 200 /, 'so the main request is served');
like($t->get('/sub/y', @d), qr/^HTTP\/1\.1 200 /,
    'even with a disabled key');

# satisfy any

like($t->get('/any/none'), qr/^HTTP\/1\.1 200 .*origin=\[\] id=\[\]/s,
    'satisfy any, allowed address, no key: 200 without identity');
like($t->get('/any/disabled', @d), qr/^HTTP\/1\.1 200 .*origin=\[\] id=\[\]/s,
    'satisfy any, allowed address, disabled key: 200 without identity');
like($t->get('/any/key', @k), qr/^HTTP\/1\.1 200 .*$api/s,
    'satisfy any, valid key: identity');
like($t->get('/any-deny/none'), qr/^HTTP\/1\.1 40[13] /,
    'satisfy any, denied address, no key: rejected');
like($t->get('/any-deny/key', @k), qr/^HTTP\/1\.1 200 .*$api/s,
    'satisfy any, denied address, valid key: 200');

###############################################################################

$t->stop();

my $log = $t->read_file('backend.log');

my @api = $log =~ m{"GET (/api/from-\w+) }g;
is(scalar(@api), 4, 'each redirect into /api/ reached the backend once, '
    . 'with the valid key only');
my @sub = $log =~ m{"GET (/api/auth-check) }g;
is(scalar(@sub), 2, 'the auth_request subrequests reached the backend '
    . 'without any key (documented)');

$t->done();

###############################################################################
