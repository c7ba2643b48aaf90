#!/usr/bin/perl

# projkey: max_stale= on a node of a private PostgreSQL.  While the server
# answers, keys are checked as ever; once it has been out of reach for
# longer than max_stale, a request that presents a key gets 503
# key_store_unavailable with Retry-After (status "unavailable"), while one
# without a key is still told 401 missing_api_key; back in touch, keys
# work again.  A zone without max_stale= on the same server keeps serving
# what it has (fail-static).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);

use Projkey::Test;
use Projkey::Pg;

###############################################################################

my $t = Projkey::Test->new()->plan(22);

my $pg = Projkey::Pg->new();
my $uri = $pg->uri;

my ($rc) = $t->cli({ db => $uri }, 'init');
die "projkey init failed\n" if $rc;

my ($id, $key) = $t->create_key('stale test', db => $uri);

$t->write_config(<<"EOF")->run();
http {
    log_format status '\$projkey_status';

    projkey_zone strict:4m db=$uri sync=250ms max_stale=2s node=n1;
    projkey_zone static:4m db=$uri sync=250ms node=n2;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /strict/ {
            projkey strict;
            access_log %%TESTDIR%%/status.log status;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }

        location /optional/ {
            projkey strict optional;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }

        location /static/ {
            projkey static;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;
        return 200 "backend\\n";
    }
}

EOF

like(get('/strict/', $key), qr/^HTTP\/1\.1 200 /, 'in touch: accepted');

# out of reach, but not for long yet

$pg->halt();
my $down = time;

like(get('/strict/', $key), qr/^HTTP\/1\.1 200 /,
    'just out of reach: still accepted');

# past max_stale: 503 for a key, whichever it is

my $r = $t->wait_for(6, sub {
    my $r = get('/strict/', $key);
    $r =~ /^HTTP\/1\.1 503 / ? $r : undef;
});
ok($r, 'past max_stale: 503');
cmp_ok(time - $down, '>=', 2 - 0.3, 'not before max_stale');
like($r, qr/\r\nRetry-After: \d+\r\n/, 'with Retry-After');
like($r, qr{\r\nContent-Type: application/json\r\n}, 'a JSON body');
my ($body) = $r =~ /\r\n\r\n(.*)/s;
my $j = eval { decode_json($body) };
is($j->{error}{code}, 'key_store_unavailable', 'key_store_unavailable');
unlike($r, qr/WWW-Authenticate/, 'no Bearer challenge: the key is not at fault');
unlike($body, qr/127\.0\.0\.1|postgres|$pg->{port}/i,
    'the body names no server');

like(get('/strict/', 'sk-project-' . ('A' x 48)), qr/^HTTP\/1\.1 503 /,
    'an unknown key too');
like(get('/strict/'), qr/^HTTP\/1\.1 401 .*missing_api_key/s,
    'no key: still 401 missing_api_key');
like(get('/strict/', 'sk-project-short'), qr/^HTTP\/1\.1 401 /,
    'a malformed key: still 401');
like(get('/optional/'), qr/^HTTP\/1\.1 200 .*backend/s,
    'optional, no key: passes to the application');
like(get('/optional/', $key), qr/^HTTP\/1\.1 503 /,
    'optional with a key: 503');

# the zone without max_stale= serves what it has

like(get('/static/', $key), qr/^HTTP\/1\.1 200 /,
    'without max_stale: the key still works');
like(get('/static/', 'sk-project-' . ('A' x 48)), qr/^HTTP\/1\.1 401 /,
    'and an unknown one is rejected');

# back in touch

$pg->resume();

$r = $t->wait_for(10, sub { get('/strict/', $key) =~ /^HTTP\/1\.1 200 / });
ok($r, 'back in touch: accepted again');
like(get('/strict/', 'sk-project-' . ('A' x 48)), qr/^HTTP\/1\.1 401 /,
    'an unknown key: 401 again');

# $projkey_status

$t->stop();

my $log = $t->read_file('status.log');
like($log, qr/^unavailable$/m, '$projkey_status: unavailable');
like($log, qr/^accepted$/m, '$projkey_status: accepted');

# configuration errors

$t->write_config(<<"EOF");
http {
    projkey_zone z:4m db=$uri sync=1s max_stale=1s;
}
EOF
my ($trc, $out) = $t->nginx_t();
like($out, qr/"max_stale=" must be at least twice "sync=" \(1000ms\)/,
    'max_stale shorter than two syncs: refused');

$t->write_config(<<"EOF");
http {
    projkey_zone z:4m db=$uri max_stale=500ms;
}
EOF
($trc, $out) = $t->nginx_t();
like($out, qr/invalid max_stale "max_stale=500ms": "off" or a time of 1s/,
    'max_stale under 1s: refused');

###############################################################################

sub get {
    my ($uri, $key) = @_;
    return $t->http("GET $uri HTTP/1.0\r\nHost: localhost\r\n"
        . (defined $key ? "Authorization: Bearer $key\r\n" : '') . "\r\n");
}

###############################################################################
