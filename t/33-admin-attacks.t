#!/usr/bin/perl

# projkey: the admin API against a cross-site form (CSRF: the content types
# a browser may send without a preflight are refused with 415 and nothing is
# created), names that are HTML, SQL or unusual Unicode (stored and returned
# as data), SQL metacharacters in ids (404), and no CORS headers.

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;

use Projkey::Test;
use Projkey::Admin;

###############################################################################

my $t = Projkey::Test->new()->plan(29);

$t->write_config(<<'EOF')->run();
http {
    projkey_zone keys:4m db=%%TESTDIR%%/keys.db sync=200ms;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /admin/ {
            projkey_admin         keys;
            projkey_admin_user    $http_x_user;
            projkey_admin_project $http_x_project;
        }

        location /api/ {
            projkey keys;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;

        location / {
            return 204;
        }
    }
}

EOF

my $api = Projkey::Admin->new($t, user => 'alice', project => 'p');

###############################################################################

# CSRF: what an HTML form or a "simple" fetch can send

my @origin = (Origin => 'https://evil.example', Referer => 'https://evil.example/x');

for my $ct ('application/x-www-form-urlencoded', 'multipart/form-data; '
    . 'boundary=XyZ', 'text/plain', 'text/plain; charset=utf-8',
    'application/x-www-form-urlencoded; charset=utf-8')
{
    my $body = $ct =~ /multipart/
        ? "--XyZ\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\n"
          . "csrf\r\n--XyZ--\r\n"
        : $ct =~ /text/ ? '{"name":"csrf"}' : 'name=csrf';
    my $r = $api->call('POST', 'keys', $body, 'Content-Type' => $ct, @origin);
    is($r->{status}, 415, "POST keys as $ct: 415");
}

# a JSON body without a content type, and a JSON-looking one that is not
my $r = $api->call('POST', 'keys', '{"name":"csrf"}', @origin);
is($r->{status}, 415, 'POST keys without Content-Type: 415');
$r = $api->call('POST', 'keys', '{"name":"csrf"}',
    'Content-Type' => 'application/jsonx', @origin);
is($r->{status}, 415, 'POST keys as application/jsonx: 415');

my ($k) = $api->create('target');
for my $ct ('text/plain', 'application/x-www-form-urlencoded') {
    $r = $api->call('PATCH', "keys/$k->{id}", '{"status":"disabled"}',
        'Content-Type' => $ct, @origin);
    is($r->{status}, 415, "PATCH as $ct: 415");
}

my $list = $api->list;
is(scalar(@$list), 1, 'no key was created by the cross-site requests');
is($list->[0]{status}, 'active', 'nor disabled');

# no CORS: nothing lets another origin read the answers

$r = $api->call('GET', 'keys', undef, @origin);
ok(!grep({ /^access-control-/ } keys %{$r->{headers}}),
    'no Access-Control-* headers on GET');
$r = $api->call('OPTIONS', 'keys', undef, @origin,
    'Access-Control-Request-Method' => 'POST',
    'Access-Control-Request-Headers' => 'content-type');
ok($r->{status} >= 400 && !grep({ /^access-control-/ } keys %{$r->{headers}}),
    "preflight OPTIONS: $r->{status}, no Access-Control-* headers");

# names are data

my @names = (
    '<script>alert(1)</script>',
    '"><img src=x onerror=alert(1)>',
    q{'; DROP TABLE keys; --},
    q{x' OR '1'='1},
    "line\x{2028}separator\x{2029}paragraph",
    "emoji \x{1F511}\x{1F600} ok",
    '{"name":"nested"}',
    '%00%0a\\u0000',
);

my $json = JSON::PP->new->utf8->canonical;
my @made;

for my $name (@names) {
    $r = $api->call('POST', 'keys', { name => $name });
    my $ok = $r->{status} == 201 && $r->{json}{key}{name} eq $name;
    push @made, [$r->{json}{key}{id}, $name, $r->{json}{secret}] if $ok;
    ok($ok, 'created and returned as data: ' . $json->encode([$name]));
}

my %by_id = map { $_->{id} => $_ } @{$api->list};
is(join(',', map { ($by_id{$_->[0]}{name} // '') eq $_->[1] ? 1 : 0 } @made),
    join(',', (1) x @names), 'every name listed back exactly');

like($api->call('GET', 'keys')->{headers}{'content-type'},
    qr{^application/json}, 'the list is JSON, not HTML');

# the table survived its name

my ($rc, $out) = $t->run_cmd('sqlite3', $t->db,
    'SELECT count(*) FROM sqlite_master WHERE type = \'table\'');
ok($rc == 0 && $out > 0, 'the database still has its tables');
is(scalar(keys %by_id), @names + 1, 'all keys are there');

# the keys work, and the backend-facing name is the raw one

my $ok = 0;
$ok += $t->get('/api/', Authorization => "Bearer $_->[2]") =~ /^HTTP\/1\.1 204 /
    for @made;
is($ok, scalar(@made), 'keys with odd names authenticate');

# SQL in ids

my @bad;
for my $id ("'%20OR%201=1", "'%20OR%20'1'='1", "1;DROP%20TABLE%20keys",
    "%27%20OR%201%3D1%20--", "$k->{id}'", "$k->{id}%20OR%201=1",
    "*", "%25", "_", "%2e%2e", "%3B")
{
    for my $m ('GET', 'PATCH', 'DELETE') {
        my $r = $api->call($m, "keys/$id", $m eq 'PATCH'
            ? { status => 'disabled' } : undef);
        push @bad, "$m $id: $r->{status}" unless $r->{status} == 404;
    }
}
is("@bad", '', 'SQL metacharacters in ids: 404 for GET, PATCH, DELETE');

$list = $api->list;
is(scalar(@$list), @names + 1, 'nothing deleted by the ids');
is(scalar(grep { $_->{status} ne 'active' } @$list), 0, 'nothing disabled');

###############################################################################

$t->done();

###############################################################################
