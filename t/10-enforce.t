#!/usr/bin/perl

# projkey: the accept/reject matrix of a protected location.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;

use Projkey::Test;

###############################################################################

my $t = Projkey::Test->new()->plan(35);

my ($id, $key) = $t->create_key('ci runner');
my ($did, $dkey) = $t->create_key('disabled one');
my ($xid, $xkey) = $t->create_key('deleted one');

die "projkey disable failed\n" if ($t->cli('disable', $did))[0];
die "projkey delete failed\n" if ($t->cli('delete', $xid))[0];

# a well-formed key that is not in this database
my (undef, $ukey) = $t->create_key('elsewhere',
    db => $t->testdir . '/other.db');

$t->write_config(<<'EOF')->run();
http {
    log_format st '$request_uri $projkey_status';

    projkey_zone keys:4m db=%%TESTDIR%%/keys.db sync=200ms;

    server {
        listen 127.0.0.1:%%PORT_0%%;
        access_log %%TESTDIR%%/status.log st;

        add_header X-Status "[$projkey_status]" always;

        location /api/ {
            projkey keys;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
            proxy_set_header X-Projkey-Origin   $projkey_origin;
            proxy_set_header X-Projkey-Key-Id   $projkey_key_id;
            proxy_set_header X-Projkey-Key-Name $projkey_key_name;
            proxy_set_header X-Projkey-Project  $projkey_project;
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

###############################################################################

# accepted

my $r = auth('/api/ok-1', "Bearer $key");
like($r, qr/^HTTP\/1\.1 200 /, 'valid key');
like($r, qr/origin=API id=\Q$id\E name=ci runner project=default /,
    'backend sees origin, id, name, project');
like($r, qr/^X-Status: \[accepted\]\r$/m, 'status accepted');

like(auth('/api/ok-2', "bearer $key"), qr/ 200 .*origin=API /s,
    'lower case scheme');
like(auth('/api/ok-3', "BEARER $key"), qr/ 200 .*origin=API /s,
    'upper case scheme');
like(auth('/api/ok-4', "Bearer  $key"), qr/ 200 .*origin=API /s,
    'two spaces');

# missing

$r = $t->get('/api/missing');
rejected($r, 'missing_api_key', 'missing', 0, 'no Authorization');
like($r, qr/^WWW-Authenticate: Bearer realm="projkey"\r$/m,
    'WWW-Authenticate exactly');

# another scheme is no bearer token: RFC 6750 3.1 says no error code when
# the client "attempted using an unsupported authentication method"

rejected(auth('/api/basic', 'Basic dXNlcjpwYXNz'),
    'missing_api_key', 'missing', 0, 'Basic scheme');

# malformed

my $bad_sum = substr($key, 0, -1) . (substr($key, -1) eq 'A' ? 'B' : 'A');
my $bad_char = $key;
substr($bad_char, 20, 1) = '_';

rejected(auth('/api/m-short', 'Bearer ' . substr($key, 0, -1)),
    'invalid_api_key', 'malformed', 1, 'one character short');
rejected(auth('/api/m-long', "Bearer ${key}A"),
    'invalid_api_key', 'malformed', 1, 'one character long');
rejected(auth('/api/m-char', "Bearer $bad_char"),
    'invalid_api_key', 'malformed', 1, 'character out of base62');
rejected(auth('/api/m-sum', "Bearer $bad_sum"),
    'invalid_api_key', 'malformed', 1, 'bad checksum');
rejected(auth('/api/m-foo', 'Bearer foo'),
    'invalid_api_key', 'malformed', 1, 'Bearer foo');
rejected(auth('/api/m-empty', 'Bearer'),
    'invalid_api_key', 'malformed', 1, 'Bearer alone');
rejected(auth('/api/m-tab', "Bearer\t$key"),
    'invalid_api_key', 'malformed', 1, 'tab after Bearer');
rejected(auth('/api/m-noscheme', $key),
    'invalid_api_key', 'malformed', 1, 'key without scheme');
rejected(auth('/api/m-trail', "Bearer $key x"),
    'invalid_api_key', 'malformed', 1, 'something after the key');
rejected(auth('/api/m-prefix', 'Bearer SK-PROJECT-' . substr($key, 11)),
    'invalid_api_key', 'malformed', 1, 'prefix in upper case');

rejected(auth('/api/m-long-header', 'Bearer ' . ('sk-project-' x 600)),
    'invalid_api_key', 'malformed', 1, 'a 6 KB value');
rejected(auth('/api/m-two', "Bearer $key $key"),
    'invalid_api_key', 'malformed', 1, 'the key twice');

# unknown, disabled, deleted

rejected(auth('/api/unknown', "Bearer $ukey"),
    'invalid_api_key', 'unknown', 1, 'unknown key');
rejected(auth('/api/disabled', "Bearer $dkey"),
    'api_key_disabled', 'disabled', 1, 'disabled key');
rejected(auth('/api/deleted', "Bearer $xkey"),
    'invalid_api_key', 'unknown', 1, 'deleted key');

# two Authorization headers: never accepted

like(auth('/api/dup', "Bearer $key", "Bearer $key"),
    qr/^HTTP\/1\.1 40[01] /, 'duplicate Authorization');
like(auth('/api/dup2', 'Bearer foo', "Bearer $key"),
    qr/^HTTP\/1\.1 40[01] /, 'duplicate Authorization, second one valid');

# a NUL byte inside the key

$r = $t->http("GET /api/nul HTTP/1.1\r\nHost: localhost\r\n"
    . "Connection: close\r\nAuthorization: Bearer "
    . substr($key, 0, 30) . "\0" . substr($key, 31) . "\r\n\r\n");
like($r, qr/^HTTP\/1\.1 40[01] /, 'NUL byte in the key');

# other methods are checked as well

like($t->request('HEAD', '/api/head', undef), qr/^HTTP\/1\.1 401 /,
    'HEAD without key');
like($t->request('POST', '/api/post', 'x=1', Authorization => "Bearer $key"),
    qr/^HTTP\/1\.1 200 .*origin=API /s, 'POST with key');

###############################################################################

$t->stop();

# the log phase sees the same status

my $log = $t->read_file('status.log');

like($log, qr{^/api/ok-1 accepted$}m, 'log: accepted');
like($log, qr{^/api/missing missing$}m, 'log: missing');
like($log, qr{^/api/m-sum malformed$}m, 'log: malformed');
like($log, qr{^/api/unknown unknown$}m, 'log: unknown');
like($log, qr{^/api/disabled disabled$}m, 'log: disabled');

# only accepted requests reached the backend

my @seen = sort $t->read_file('backend.log') =~ m{"[A-Z]+ (\S+)}g;
is("@seen", '/api/ok-1 /api/ok-2 /api/ok-3 /api/ok-4 /api/post',
    'backend saw accepted requests only');

$t->done();

###############################################################################

sub auth {
    my ($uri, @values) = @_;
    return $t->get($uri, map { (Authorization => $_) } @values);
}

# one subtest per rejection: status, WWW-Authenticate, the JSON body,
# $projkey_status, and that neither the backend nor a key shows
sub rejected {
    my ($r, $code, $status, $token, $name) = @_;

    subtest $name => sub {
        my ($st, $h, $body) = Projkey::Test::parse_response($r);

        is($st, 401, 'status 401');

        my $wa = $h->{'www-authenticate'} // '';
        like($wa, qr/^Bearer realm="projkey"/, 'WWW-Authenticate Bearer');
        if ($token) {
            like($wa, qr/error="invalid_token"/, 'error="invalid_token"');
        } else {
            unlike($wa, qr/error=/, 'no error=');
        }

        like($h->{'content-type'} // '', qr{^application/json\b},
            'JSON content type');

        my $j = eval { JSON::PP->new->decode($body) } // {};
        ok(ref $j->{error} eq 'HASH', 'error object') or diag("body: $body");
        is($j->{error}{code}, $code, "code $code");
        ok(defined $j->{error}{message} && !ref $j->{error}{message}
            && length $j->{error}{message}, 'message');

        is($h->{'x-status'}, "[$status]", "\$projkey_status $status");

        unlike($r, qr/status=ok/, 'backend not reached');
        unlike($r, qr/sk-project-\w{48}/, 'no key in the response');
    };
}

###############################################################################
