#!/usr/bin/perl

# projkey: the admin JSON API's contract, call by call: statuses, body
# shapes, Cache-Control: no-store on every response, the secret only in
# the create response, every body error, 405/404/413/415/403, project
# isolation, $remote_user with auth_basic, HEAD.

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use JSON::PP;
use MIME::Base64 ();

use Projkey::Test;
use Projkey::Admin;

###############################################################################

my $t = Projkey::Test->new()->plan(214);

my ($rc, $hash) = $t->run_cmd('openssl', 'passwd', '-apr1', 'pw-of-admin');
chomp $hash;
die "openssl passwd failed\n" unless $rc == 0 && $hash =~ /^\$apr1\$/;
$t->write_file('htpasswd', "admin:$hash\n");

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

        # $remote_user verified by auth_basic, project "default"
        location /basic/ {
            auth_basic           "projkey admin";
            auth_basic_user_file %%TESTDIR%%/htpasswd;
            projkey_admin        keys;
            projkey_admin_user   $remote_user;
        }
    }
}

EOF

###############################################################################

my $api = Projkey::Admin->new($t, user => 'alice', project => 'a');
my $other = $api->as(user => 'bob', project => 'b');

my (@secrets, @later);   # every secret; every response that must not hold one

my @fields = sort qw(id name preview status project created_by created_at
    updated_at last_used_at expires_at previous_preview previous_expires_at);
my $time_re = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

sub code { Projkey::Admin::code($_[0]) }

# an error response: status, code, the JSON error shape, no-store
sub is_error {
    my ($r, $status, $code, $name) = @_;
    my $j = $r->{json};

    my $ok = $r->{status} == $status
        && code($r) eq $code
        && ref $j eq 'HASH' && keys %$j == 1
        && ref $j->{error} eq 'HASH' && keys(%{$j->{error}}) == 2
        && length($j->{error}{message} // '') > 0
        && ($r->{headers}{'cache-control'} // '') eq 'no-store'
        && ($r->{headers}{'content-type'} // '') =~ m{^application/json};

    ok($ok, "$name: $status $code")
        or diag("got $r->{status} " . ($r->{body} // '') . ' cache-control: '
            . ($r->{headers}{'cache-control'} // 'none'));
    push @later, $r;
    return $ok;
}

sub key_shape {
    my ($k, $name) = @_;
    my $ok = ref $k eq 'HASH'
        && join(',', sort keys %$k) eq join(',', @fields)
        && ($k->{id} // '') =~ /^[0-9A-Za-z]{12}$/
        && ($k->{preview} // '') =~ /^sk-project-\.\.\.[0-9A-Za-z]{4}$/
        && ($k->{status} // '') =~ /^(?:active|disabled)$/
        && ($k->{created_at} // '') =~ $time_re
        && ($k->{updated_at} // '') =~ $time_re
        && (!defined $k->{last_used_at} || $k->{last_used_at} =~ $time_re)
        && (!defined $k->{expires_at} || $k->{expires_at} =~ $time_re);
    ok($ok, "$name: KEY shape") or diag(explain($k));
}

sub no_store {
    my ($r, $name) = @_;
    is($r->{headers}{'cache-control'}, 'no-store', "$name: no-store");
}

sub count { scalar @{$api->list} }

###############################################################################

# who may call

my $r = $api->as(user => undef)->call('GET', 'keys');
is_error($r, 403, 'forbidden', 'no X-User');
$r = $api->as(user => '')->call('POST', 'keys', { name => 'x' });
is_error($r, 403, 'forbidden', 'empty user, POST');

$r = Projkey::Admin->new($t, prefix => '/basic/')->call('GET', 'keys');
is($r->{status}, 401, 'auth_basic: no credentials, 401');
$r = Projkey::Admin->new($t, prefix => '/basic/', headers =>
    [Authorization => 'Basic ' . MIME::Base64::encode_base64('mallory:x', '')])
    ->call('GET', 'keys');
is($r->{status}, 401, 'auth_basic: an unverified user, 401');

my $basic = Projkey::Admin->new($t, prefix => '/basic/', headers =>
    [ Authorization => 'Basic ' . b64('admin:pw-of-admin') ]);
$r = $basic->call('POST', 'keys', { name => 'by basic' });
is($r->{status}, 201, 'auth_basic: created');
is($r->{json}{key}{created_by}, 'admin', 'created_by is $remote_user');
is($r->{json}{key}{project}, 'default', 'project is "default"');
push @secrets, $r->{json}{secret};
my $basic_id = $r->{json}{key}{id};

# an empty list

$r = $api->call('GET', 'keys');
is($r->{status}, 200, 'list: 200');
is_deeply($r->{json}, { keys => [], next => undef },
    'list: empty in project a');
no_store($r, 'list');
like($r->{headers}{'content-type'}, qr{^application/json}, 'list: JSON');
push @later, $r;

# create

$r = $api->call('POST', 'keys', { name => 'first key' });
is($r->{status}, 201, 'create: 201');
no_store($r, 'create');
like($r->{headers}{'content-type'}, qr{^application/json}, 'create: JSON');
is(join(',', sort keys %{$r->{json}}), 'key,revision,secret',
    'create: key, secret, revision');
like($r->{json}{revision}, qr/^[1-9]\d*$/, 'create: revision, a number');
key_shape($r->{json}{key}, 'create');

my $key = $r->{json}{key};
my $secret = $r->{json}{secret};
push @secrets, $secret;

like($secret, qr/^sk-project-[0-9A-Za-z]{48}$/, 'secret format');
is($key->{preview}, 'sk-project-...' . substr($secret, -4),
    'preview: last 4 of the secret');
is($key->{name}, 'first key', 'create: name');
is($key->{status}, 'active', 'create: active');
is($key->{project}, 'a', 'create: project');
is($key->{created_by}, 'alice', 'create: created_by');
is($key->{updated_at}, $key->{created_at}, 'create: updated_at');
ok(!defined $key->{last_used_at}, 'create: last_used_at null');
ok(exists $key->{last_used_at}, 'create: last_used_at present');
unlike($key->{id}, qr/\Q@{[substr($secret, 11, 12)]}\E/,
    'id is not a part of the secret');

# get

$r = $api->call('GET', "keys/$key->{id}");
is($r->{status}, 200, 'get: 200');
no_store($r, 'get');
is(join(',', keys %{$r->{json}}), 'key', 'get: {"key"}');
key_shape($r->{json}{key}, 'get');
is_deeply($r->{json}{key}, $key, 'get: the created key');
push @later, $r;

# list

$r = $api->call('GET', 'keys');
is(scalar @{$r->{json}{keys}}, 1, 'list: one key in a');
is_deeply($r->{json}{keys}[0], $key, 'list: the created key');
push @later, $r;

# update

$r = $api->call('PATCH', "keys/$key->{id}", { name => 'renamed' });
is($r->{status}, 200, 'rename: 200');
no_store($r, 'rename');
is(join(',', sort keys %{$r->{json}}), 'key,message,revision',
    'rename: key, message, revision');
is($r->{json}{message}, 'The API key has been updated.', 'rename: message');
key_shape($r->{json}{key}, 'rename');
is($r->{json}{key}{name}, 'renamed', 'rename: new name');
is($r->{json}{key}{status}, 'active', 'rename: status kept');
is($r->{json}{key}{id}, $key->{id}, 'rename: same id');
is($r->{json}{key}{preview}, $key->{preview}, 'rename: same preview');
push @later, $r;

$r = $api->call('PATCH', "keys/$key->{id}", { status => 'disabled' });
is($r->{status}, 200, 'disable: 200');
is($r->{json}{key}{status}, 'disabled', 'disable: disabled');
is($r->{json}{key}{name}, 'renamed', 'disable: name kept');
push @later, $r;

$r = $api->call('PATCH', "keys/$key->{id}",
    { name => 'both', status => 'active' });
is($r->{status}, 200, 'rename and enable: 200');
is($r->{json}{key}{name} . '/' . $r->{json}{key}{status}, 'both/active',
    'rename and enable at once');
push @later, $r;

$r = $api->call('GET', "keys/$key->{id}");
is($r->{json}{key}{name} . '/' . $r->{json}{key}{status}, 'both/active',
    'get after update');
push @later, $r;

# create with a status

$r = $api->call('POST', 'keys', { name => 'born disabled',
    status => 'disabled' });
is($r->{status} . '/' . ($r->{json}{key}{status} // ''), '201/disabled',
    'create with status disabled');
push @secrets, $r->{json}{secret};

# content types that are JSON

$r = $api->call('POST', 'keys', '{"name":"charset"}',
    'Content-Type' => 'application/json; charset=utf-8');
is($r->{status}, 201, 'application/json; charset=utf-8 accepted');
push @secrets, $r->{json}{secret};
$r = $api->call('POST', 'keys', '{"name":"upper case type"}',
    'Content-Type' => 'Application/JSON');
is($r->{status}, 201, 'Application/JSON accepted');
push @secrets, $r->{json}{secret};

# delete

my ($del) = $api->create('to delete');
$r = $api->call('DELETE', "keys/$del->{id}");
is($r->{status}, 204, 'delete: 204');
is($r->{body}, '', 'delete: no body');
like($r->{headers}{'x-projkey-revision'} // '', qr/^[1-9]\d*$/,
    'delete: X-Projkey-Revision');
no_store($r, 'delete');
is_error($api->call('GET', "keys/$del->{id}"), 404, 'not_found',
    'get deleted');
is_error($api->call('DELETE', "keys/$del->{id}"), 404, 'not_found',
    'delete deleted');
is_error($api->call('PATCH', "keys/$del->{id}", { name => 'x' }), 404,
    'not_found', 'patch deleted');
ok(!grep({ $_->{id} eq $del->{id} } @{$api->list}), 'deleted not listed');

# 405 with Allow

for my $c (['keys', 'GET, POST', qw(PUT PATCH DELETE OPTIONS)],
    ["keys/$key->{id}", 'GET, PATCH, DELETE', qw(POST PUT OPTIONS)],
    ['audit', 'GET', qw(POST PUT PATCH DELETE)],
    ['nodes', 'GET', qw(POST PUT PATCH DELETE)])
{
    my ($path, $allow, @methods) = @$c;
    for my $m (@methods) {
        my $path_name = $path =~ m{/} ? 'keys/ID' : $path;
        my $body = $m =~ /^(?:PUT|PATCH|POST)$/ ? { name => 'x' } : undef;
        $r = $api->call($m, $path, $body);
        is_error($r, 405, 'method_not_allowed', "$m $path_name");
        is($r->{headers}{allow}, $allow, "$m $path_name: Allow: $allow");
    }
}
is(count(), 4, '405s created nothing');

# 404: paths and ids

for my $path ('', 'nope', 'keysx', 'keys/short', "keys/$key->{id}/x",
    "keys/$key->{id}x", 'keys/ABCDEFGHIJK!', 'audit/x', 'nodes/x', 'KEYS')
{
    is_error($api->call('GET', $path), 404, 'not_found', "GET '$path'");
}
is_error($api->call('GET', 'keys/AAAAAAAAAAAA'), 404, 'not_found',
    'GET unknown id');
is_error($api->call('PATCH', 'keys/AAAAAAAAAAAA', { name => 'x' }), 404,
    'not_found', 'PATCH unknown id');
is_error($api->call('DELETE', 'keys/AAAAAAAAAAAA'), 404, 'not_found',
    'DELETE unknown id');

# 400: every body error, on create and on update, nothing created

my $n = count();
my $e101 = 'é' x 101;

my @bad = (
    ['{',                               'invalid JSON'],
    ['not json',                        'not JSON'],
    ['{"name":"x"} {}',                 'trailing data'],
    ['{"name":"x",}',                   'trailing comma'],
    ['[]',                              'array'],
    ['"name"',                          'string'],
    ['null',                            'null'],
    ['42',                              'number'],
    ['{"name":"x","foo":1}',            'unknown field'],
    ['{"name":"x","Name":"y"}',         'field case'],
    ['{"name":"a","name":"b"}',         'duplicate name'],
    ['{"name":"a","status":"active","status":"active"}', 'duplicate status'],
    ['{"name":1}',                      'name number'],
    ['{"name":null}',                   'name null'],
    ['{"name":true}',                   'name boolean'],
    ['{"name":["x"]}',                  'name array'],
    ['{"name":{"x":1}}',                'name object'],
    ['{"name":""}',                     'empty name'],
    ['{"name":"   "}',                  'blank name'],
    ['{"name":"\t\n"}',                 'whitespace name'],
    [qq({"name":"$e101"}),              '101 characters (é)'],
    [qq({"name":"@{['x' x 101]}"}),     '101 characters (ASCII)'],
    ['{"name":"a\u0001b"}',             'control character \u0001'],
    ['{"name":"a\u0000b"}',             'NUL \u0000'],
    ['{"name":"a\nb"}',                 'newline inside'],
    ['{"name":"a\u001bb"}',             'escape character'],
    ['{"name":"a\u007fb"}',             'DEL'],
    ['{"name":"a\u0085b"}',             'C1 control'],
    [qq({"name":"a\x01b"}),             'raw control character'],
    ['{"name":"x","status":"paused"}',  'bad status'],
    ['{"name":"x","status":"Active"}',  'status case'],
    ['{"name":"x","status":true}',      'status boolean'],
    ['{"name":"x","status":1}',         'status number'],
    ['{"name":"x","status":null}',      'status null'],
);

for my $b (@bad) {
    my ($body, $name) = @$b;
    my $bytes = $body;
    utf8::encode($bytes);
    is_error($api->call('POST', 'keys', $bytes,
        'Content-Type' => 'application/json'), 400, 'invalid_request',
        "POST $name");
}

is_error($api->call('POST', 'keys', '{}', 'Content-Type' => 'application/json'),
    400, 'invalid_request', 'POST without name');
is_error($api->call('POST', 'keys', '', 'Content-Type' => 'application/json'),
    400, 'invalid_request', 'POST empty body');
is_error($api->call('POST', 'keys', undef, 'Content-Type' => 'application/json'),
    400, 'invalid_request', 'POST no body');
is_error($api->call('POST', 'keys', "{\"name\":\"\xff\xfe\"}",
    'Content-Type' => 'application/json'), 400, 'invalid_request',
    'POST invalid UTF-8');

is(count(), $n, 'no key created by a bad body');

my $before_bad = $api->call('GET', "keys/$key->{id}")->{json}{key};

for my $b (@bad[0 .. 7, 8, 10, 12, 17, 18, 20, 22, 23, 29, 32],
    ['{}', 'nothing to change'], ['{"status":"enabled"}', 'status enabled'])
{
    my ($body, $name) = @$b;
    my $bytes = $body;
    utf8::encode($bytes);
    is_error($api->call('PATCH', "keys/$key->{id}", $bytes,
        'Content-Type' => 'application/json'), 400, 'invalid_request',
        "PATCH $name");
}

$r = $api->call('GET', "keys/$key->{id}");
is($r->{json}{key}{name} . '/' . $r->{json}{key}{status}, 'both/active',
    'bad PATCHes changed nothing');
is($r->{json}{key}{updated_at}, $before_bad->{updated_at},
    'updated_at kept');

# names that are good: 100 characters of é, trimmed, Unicode

my $e100 = 'é' x 100;
$r = $api->call('POST', 'keys', { name => $e100 });
is($r->{status}, 201, '100 characters (é, 200 bytes) accepted');
is($r->{json}{key}{name}, $e100, '100 é round-trip');
push @secrets, $r->{json}{secret};

$r = $api->call('POST', 'keys', { name => '  padded  ' });
is($r->{json}{key}{name}, 'padded', 'name trimmed');
push @secrets, $r->{json}{secret};

my $evil = q{<script>alert("x")</script>'; DROP TABLE keys; -- " OR 1=1 %_\\};
$r = $api->call('POST', 'keys', { name => $evil });
is($r->{status}, 201, 'name with markup and SQL: created');
push @secrets, $r->{json}{secret};
my $evil_id = $r->{json}{key}{id};
$r = $api->call('GET', "keys/$evil_id");
is($r->{json}{key}{name}, $evil, 'markup and SQL round-trip as data');
ok(scalar(grep { $_->{name} eq $evil } @{$api->list}), 'listed as data');
ok(count() > 0, 'the keys table is still there');

$r = $api->call('PATCH', "keys/$evil_id", { name => 'x' x 100 });
is($r->{json}{key}{name}, 'x' x 100, 'rename to 100 characters');

# 413: a 17 KiB body, with Content-Length and chunked; 16 KiB is read

$n = count();
my $big = '{"name":"' . ('x' x (17 * 1024 - 11)) . '"}';
is(length $big, 17 * 1024, 'a 17 KiB body');
is_error($api->call('POST', 'keys', $big,
    'Content-Type' => 'application/json'), 413, 'payload_too_large',
    'POST 17 KiB, Content-Length');

my $chunked = "POST /admin/keys HTTP/1.1\r\nHost: localhost\r\n"
    . "Connection: close\r\nX-User: alice\r\nX-Project: a\r\n"
    . "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
for (my $i = 0; $i < length $big; $i += 4096) {
    my $part = substr($big, $i, 4096);
    $chunked .= sprintf("%x\r\n%s\r\n", length $part, $part);
}
$chunked .= "0\r\n\r\n";
is_error($api->raw($chunked), 413, 'payload_too_large',
    'POST 17 KiB, chunked');

my $patch = $chunked;
$patch =~ s{^POST /admin/keys }{PATCH /admin/keys/$key->{id} };
is_error($api->raw($patch), 413, 'payload_too_large', 'PATCH 17 KiB, chunked');

my $edge = '{"name":"' . ('x' x (16 * 1024 - 11)) . '"}';
is_error($api->call('POST', 'keys', $edge,
    'Content-Type' => 'application/json'), 400, 'invalid_request',
    'POST exactly 16 KiB is read (name too long)');
my $over = '{"name":"' . ('x' x (16 * 1024 - 10)) . '"}';
is_error($api->call('POST', 'keys', $over,
    'Content-Type' => 'application/json'), 413, 'payload_too_large',
    'POST 16 KiB + 1');

is(count(), $n, 'no key created by a large body');

# 415: a body that is not application/json (what a cross-site form sends)

for my $type (undef, 'text/plain', 'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=xyz', 'application/jsonx',
    'application/json-patch+json', 'text/json')
{
    my @h = defined $type ? ('Content-Type' => $type) : ();
    my $label = $type // 'no Content-Type';
    is_error($api->call('POST', 'keys', '{"name":"form"}', @h), 415,
        'unsupported_media_type', "POST $label");
}

my $form = "--xyz\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\n"
    . "form\r\n--xyz--\r\n";
is_error($api->call('POST', 'keys', $form,
    'Content-Type' => 'multipart/form-data; boundary=xyz'), 415,
    'unsupported_media_type', 'POST a multipart form');
is_error($api->call('POST', 'keys', 'name=form',
    'Content-Type' => 'application/x-www-form-urlencoded'), 415,
    'unsupported_media_type', 'POST an urlencoded form');
is_error($api->call('PATCH', "keys/$key->{id}", '{"status":"disabled"}',
    'Content-Type' => 'text/plain'), 415, 'unsupported_media_type',
    'PATCH text/plain');

is(count(), $n, 'no key created by a form');
is($api->call('GET', "keys/$key->{id}")->{json}{key}{status}, 'active',
    'text/plain PATCH changed nothing');

# project isolation

my ($bkey, $bsecret) = $other->create('of project b');
push @secrets, $bsecret;

is_error($other->call('GET', "keys/$key->{id}"), 404, 'not_found',
    'b: GET a key of a');
is_error($other->call('PATCH', "keys/$key->{id}", { status => 'disabled' }),
    404, 'not_found', 'b: PATCH a key of a');
is_error($other->call('PATCH', "keys/$key->{id}", { name => 'stolen' }),
    404, 'not_found', 'b: rename a key of a');
is_error($other->call('DELETE', "keys/$key->{id}"), 404, 'not_found',
    'b: DELETE a key of a');

my $blist = $other->list;
is(scalar @$blist, 1, 'b lists only its key');
is($blist->[0]{id}, $bkey->{id}, 'b lists its own key');
ok(!grep({ $_->{id} eq $bkey->{id} } @{$api->list}), 'a does not list b\'s');
is_error($api->call('GET', "keys/$bkey->{id}"), 404, 'not_found',
    'a: GET a key of b');

$r = $api->call('GET', "keys/$key->{id}");
is($r->{json}{key}{name} . '/' . $r->{json}{key}{status}, 'both/active',
    'a\'s key untouched by b');
ok(!grep({ $_->{id} eq $basic_id } @{$api->list}),
    'project "default" not in a');

# newest first

# (keys of one second in id order: created_at has seconds only, so the
# three are made a second after the others)

sleep 1;
my @ids = map { ($api->create("order $_"))[0]{id} } 1 .. 3;
my $list = $api->list;
is_deeply([ sort map { $_->{id} } @$list[0 .. 2] ], [ sort @ids ],
    'list: newest first');
my @order = map { "$_->{created_at} $_->{id}" } @$list;
is_deeply(\@order, [ sort { $b cmp $a } @order ],
    'list: created_at descending, then id');
push @later, $api->call('GET', 'keys');

# HEAD

for my $path ('keys', "keys/$key->{id}", 'audit') {
    my $label = $path =~ m{/} ? 'keys/ID' : $path;
    $r = $api->call('HEAD', $path);
    is($r->{status} . '/' . length($r->{body}), '200/0', "HEAD $label");
    no_store($r, "HEAD $label");
}
is($api->call('HEAD', 'keys/AAAAAAAAAAAA')->{status}, 404, 'HEAD unknown id');

# the secret: only in its create response

@secrets = grep { defined } @secrets;
my @leaks;
for my $resp (@later) {
    for my $s (@secrets) {
        push @leaks, $resp->{raw} if index($resp->{raw}, $s) >= 0
            || index($resp->{raw}, substr($s, 11)) >= 0;
    }
}
is(scalar @leaks, 0, 'no secret in any later response')
    or diag($leaks[0]);

$t->stop();

my $logs = $t->read_file('error.log') . $t->read_file('access.log');
ok(length $logs, 'logs written');
ok(!grep({ index($logs, substr($_, 11)) >= 0 } @secrets),
    'no secret in error.log (info) or access.log');

###############################################################################

$t->done();

###############################################################################

sub b64 {
    require MIME::Base64;
    return MIME::Base64::encode_base64($_[0], '');
}

###############################################################################
