#!/usr/bin/perl

# projkey: hostile Authorization headers, keys in other places, near-miss
# keys.  Each request is rejected (or harmless: a valid key stays itself),
# nothing rejected reaches the backend, and no key shows in any log
# (error.log at info, the front and backend access logs).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use MIME::Base64 qw(encode_base64);
use Test::More;

use Projkey::Test;

###############################################################################

my $t = Projkey::Test->new()->plan(32);

my ($id, $key) = $t->create_key('real');
my ($did, $dkey) = $t->create_key('disabled');
my ($xid, $xkey) = $t->create_key('deleted');
# a valid key used only in URLs and cookies (which nginx logs as they are)
my ($qid, $qkey) = $t->create_key('url and cookie');

die "projkey disable failed\n" if ($t->cli('disable', $did))[0];
die "projkey delete failed\n" if ($t->cli('delete', $xid))[0];

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
    }

    # headers up to 128k: 64 KiB tokens reach the module
    server {
        listen 127.0.0.1:%%PORT_2%%;
        large_client_header_buffers 4 128k;

        location /api/ {
            projkey keys;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;
        access_log %%TESTDIR%%/backend.log;

        location / {
            return 200 "origin=$http_x_projkey_origin id=$http_x_projkey_key_id auth=[$http_authorization] status=ok\n";
        }
    }
}

EOF

###############################################################################

my $n = 0;
my @rejected;       # URIs that must not reach the backend
my @bad;            # "name: status" of every request that got through

my $ok_re = qr/^HTTP\/1\.1 200 .*origin=API id=\Q$id\E auth=\[\] status=ok/s;

# one request: a status among @allowed, no backend reply unless it is the
# real key accepted as itself
sub attack {
    my ($prefix, $raw_headers, $name, %o) = @_;
    my $uri = sprintf '%s/a%04d', $prefix, ++$n;
    my $port = $o{port} // $t->port(0);

    my $r = $t->http("GET $uri HTTP/1.1\r\nHost: localhost\r\n"
        . "Connection: close\r\n$raw_headers\r\n", port => $port);
    my ($st) = $r =~ /^HTTP\/1\.1 (\d{3})/;
    $st //= 0;

    if ($o{harmless} && $st == 200) {
        push @bad, "$name: 200 without the key's identity"
            unless $r =~ $ok_re;
        return $st;
    }

    push @rejected, $uri;
    my %allowed = map { $_ => 1 } @{$o{allowed} // [401]};
    push @bad, "$name: $st" unless $allowed{$st} && $r !~ /status=ok/;
    push @bad, "$name: no invalid_api_key"
        if $o{code} && $st == 401 && $r !~ /"code":"\Q$o{code}\E"/;

    return $st;
}

sub auth { join '', map { "Authorization: $_\r\n" } @_ }

like($t->get('/api/ok', Authorization => "Bearer $key"), $ok_re,
    'the real key works and is hidden');

# duplicates, comma-joined credentials

@bad = ();
attack('/api', auth("Bearer $key", "Bearer $key"), 'dup same',
    allowed => [400, 401]);
attack('/api', auth("Bearer foo", "Bearer $key"), 'dup foo first',
    allowed => [400, 401]);
attack('/api', auth("Bearer $key", "Bearer $dkey"), 'dup disabled second',
    allowed => [400, 401]);
attack('/api', auth("Basic dTpw", "Bearer $key"), 'dup basic first',
    allowed => [400, 401]);
attack('/opt', auth("Bearer foo", "Bearer $key"), 'opt dup',
    allowed => [400, 401]);
attack('/api', auth("Bearer $key, Bearer $key"), 'comma same');
attack('/api', auth("Bearer $key,Bearer $dkey"), 'comma disabled');
attack('/api', auth("Bearer $dkey, Bearer $key"), 'comma disabled first');
attack('/api', auth("Bearer $key, Basic dTpw"), 'comma basic');
attack('/api', auth("Bearer $key,"), 'trailing comma');
attack('/api', auth("Bearer $key;"), 'trailing semicolon');
attack('/api', auth("Bearer \"$key\""), 'quoted');
attack('/api', auth("Bearer $key=="), 'padding');
attack('/api', auth("Bearer=$key"), 'Bearer=');
attack('/api', auth("Bearer:$key"), 'Bearer:');
is("@bad", '', 'duplicates and joined credentials rejected');

# whitespace

@bad = ();
attack('/api', auth("Bearer\t$key"), 'tab separator', code => 'invalid_api_key');
attack('/api', auth("Bearer \t$key"), 'space tab');
attack('/api', auth("\tBearer $key"), 'leading tab', harmless => 1);
attack('/api', auth("Bearer $key\t"), 'trailing tab', harmless => 1);
attack('/api', auth("Bearer $key   "), 'trailing spaces', harmless => 1);
attack('/api', auth("   Bearer $key"), 'leading spaces', harmless => 1);
attack('/api', auth("Bearer " . (' ' x 1000) . $key), '1000 spaces',
    harmless => 1);
attack('/api', auth("Bearer\x0b$key"), 'vertical tab');
attack('/api', auth("Bearer\xa0$key"), 'no-break space (latin-1)');
attack('/api', auth("Bearer\xc2\xa0$key"), 'no-break space (utf-8)');
attack('/api', auth("Bearer " . substr($key, 0, 30) . ' '
    . substr($key, 30)), 'space inside the key');
attack('/api', "Authorization : Bearer $key\r\n", 'space before colon',
    allowed => [400, 401]);
attack('/api', "Authorization:Bearer $key\r\n", 'no space after colon',
    harmless => 1);
attack('/api', "Authorization: Bearer\r\n $key\r\n", 'obsolete line folding',
    allowed => [400, 401]);
is("@bad", '', 'whitespace variants rejected or harmless');

# other schemes, empty bearer

@bad = ();
attack('/api', auth('Basic ' . encode_base64("$key:", '')), 'basic user',
    code => 'missing_api_key');
attack('/api', auth('Basic ' . encode_base64("x:$key", '')), 'basic pass',
    code => 'missing_api_key');
attack('/api', auth("Basic $key"), 'basic raw', code => 'invalid_api_key');
attack('/api', auth("Token $key"), 'Token', code => 'invalid_api_key');
attack('/api', auth("ApiKey $key"), 'ApiKey', code => 'invalid_api_key');
attack('/api', auth("Bearers $key"), 'Bearers', code => 'invalid_api_key');
attack('/api', auth("Bear $key"), 'Bear', code => 'invalid_api_key');
attack('/api', auth("Digest username=\"$key\""), 'Digest');
attack('/api', auth("Bearer"), 'Bearer alone', code => 'invalid_api_key');
attack('/api', auth("Bearer "), 'Bearer space');
attack('/api', auth("Bearer sk-project-"), 'prefix only',
    code => 'invalid_api_key');
attack('/api', auth(""), 'empty header', code => 'missing_api_key');
attack('/api', auth("sk-project-"), 'bare prefix');
attack('/api', "X-Api-Key: $key\r\n", 'X-Api-Key header',
    code => 'missing_api_key');
attack('/api', "Proxy-Authorization: Bearer $key\r\n",
    'Proxy-Authorization', code => 'missing_api_key');
attack('/api', "Authorisation: Bearer $key\r\n", 'Authorisation',
    code => 'missing_api_key');
attack('/api', "Authorization\x00: Bearer $key\r\n", 'NUL in name',
    allowed => [400, 401]);
is("@bad", '', 'other schemes and empty bearer rejected');

# 64 KiB tokens: nginx's header limit (400/431) on the default server, the
# module (401) where headers of 128k are allowed

@bad = ();
my $big = 'A' x 65536;
for my $port ($t->port(0), $t->port(2)) {
    attack('/api', auth("Bearer $key$big"), "key+64k on $port",
        port => $port, allowed => [400, 431, 401]);
    attack('/api', auth("Bearer $big$key"), "64k+key on $port",
        port => $port, allowed => [400, 431, 401]);
    attack('/api', auth("Bearer sk-project-$big"), "prefix+64k on $port",
        port => $port, allowed => [400, 431, 401]);
    attack('/api', auth("Bearer " . ("sk-project-" x 5000)),
        "many prefixes on $port", port => $port, allowed => [400, 431, 401]);
    attack('/api', join('', map { auth("Bearer $_") } ('A' x 8000) x 8),
        "8 headers of 8000 on $port", port => $port,
        allowed => [400, 431, 401]);
}
is("@bad", '', '64 KiB tokens rejected');

my $st = attack('/api', auth("Bearer $key$big"), 'key+64k module',
    port => $t->port(2));
is($st, 401, '64 KiB token seen by the module: 401');

# bytes 0x00-0x1f and 0x7f-0xff inside the token (replacing a character,
# and added before and after the key)

@bad = ();
for my $c (0x00 .. 0x1f, 0x7f .. 0xff) {
    next if $c == 0x0a || $c == 0x0d;       # line ends: below
    my $b = chr $c;
    my $in = $key;
    substr($in, 30, 1) = $b;
    attack('/api', auth("Bearer $in"), sprintf('0x%02x inside', $c),
        allowed => [400, 401]);
    attack('/api', auth("Bearer $b$key"), sprintf('0x%02x before', $c),
        allowed => [400, 401], harmless => $c == 0x09);
    # nginx trims trailing tabs, as spaces, from header values
    attack('/api', auth("Bearer $key$b"), sprintf('0x%02x after', $c),
        allowed => [400, 401], harmless => $c == 0x09);
}
attack('/api', "Authorization: Bearer " . substr($key, 0, 30) . "\r"
    . substr($key, 30) . "\r\n", 'bare CR inside', allowed => [400, 401]);
attack('/api', "Authorization: Bearer " . substr($key, 0, 30) . "\n"
    . substr($key, 30) . "\r\n", 'bare LF inside', allowed => [400, 401]);
is("@bad", '', 'control and high bytes in the token rejected');

# keys in the query string and cookies are never accepted

@bad = ();
for my $q ("api_key=$qkey", "access_token=$qkey", "key=$qkey",
    "authorization=Bearer%20$qkey", "Authorization=Bearer+$qkey")
{
    attack("/api/q?$q", '', "query $q", code => 'missing_api_key');
}
attack('/api', "Cookie: api_key=$qkey\r\n", 'cookie api_key',
    code => 'missing_api_key');
attack('/api', "Cookie: access_token=$qkey\r\n", 'cookie access_token',
    code => 'missing_api_key');
attack('/api', "Cookie: Authorization=Bearer $qkey\r\n", 'cookie bearer',
    code => 'missing_api_key');
is("@bad", '', 'keys in the query string or cookies rejected');

my $r = $t->get("/opt/q?api_key=$qkey&access_token=$qkey",
    Cookie => "api_key=$qkey");
like($r, qr/ 200 .*origin= id= auth=\[\] status=ok/s,
    'optional location: a key in URL or cookie gives no identity');

# near-miss keys: one character changed, the checksum recomputed

my @near = map { near_miss($key, $_) } 11, 12, 30, 51, 52;
is(scalar(grep { valid_format($_) } @near), 5,
    'near-miss keys are well-formed (checksum recomputed)');
ok(valid_format($key), 'the CRC-32 of this test agrees with the real key');

for my $i (0 .. $#near) {
    $r = $t->get("/api/near$i", Authorization => "Bearer $near[$i]");
    push @rejected, "/api/near$i";
    like($r, qr/^HTTP\/1\.1 401 .*"code":"invalid_api_key"/s,
        "near miss at " . (11, 12, 30, 51, 52)[$i] . ': invalid_api_key');
}

# a near miss of the disabled key is unknown, not disabled

$r = $t->get('/api/near-d', Authorization => 'Bearer ' . near_miss($dkey, 40));
push @rejected, '/api/near-d';
like($r, qr/^HTTP\/1\.1 401 .*"code":"invalid_api_key"/s,
    'near miss of a disabled key: invalid_api_key');

# the same key case-flipped in one letter, checksum recomputed

my $flip = $key;
my $pos = 11;
$pos++ while substr($flip, $pos, 1) !~ /[A-Za-z]/;
substr($flip, $pos, 1) = lc(substr($flip, $pos, 1)) eq substr($flip, $pos, 1)
    ? uc(substr($flip, $pos, 1)) : lc(substr($flip, $pos, 1));
$flip = with_checksum(substr($flip, 0, 53));
$r = $t->get('/api/flip', Authorization => "Bearer $flip");
push @rejected, '/api/flip';
like($r, qr/^HTTP\/1\.1 401 .*"code":"invalid_api_key"/s,
    'case flipped in one letter: invalid_api_key');

like($t->get('/api/after', Authorization => "Bearer $key"), $ok_re,
    'the real key still works after the attacks');

like($t->get('/api/dkey', Authorization => "Bearer $dkey"),
    qr/ 401 .*api_key_disabled/s, 'disabled key');
like($t->get('/api/xkey', Authorization => "Bearer $xkey"),
    qr/ 401 .*invalid_api_key/s, 'deleted key');
push @rejected, '/api/dkey', '/api/xkey';

###############################################################################

$t->stop();

my %seen = map { $_ => 1 } $t->read_file('backend.log') =~ m{"[A-Z]+ (\S+)}g;
my @through = grep { $seen{$_} } @rejected;
is("@through", '', 'no rejected request reached the backend')
    or diag(scalar(@through) . ' of ' . scalar(@rejected));
ok($seen{'/api/ok'} && $seen{'/api/after'}, 'accepted requests did');

# no key in any log: the header keys (16 characters of their random body
# in a row) are in no log, except where nginx itself writes them:
# - nginx core logs, at info, the raw header line of a request it refuses
#   itself (400 "client sent duplicate/too long/invalid header line"),
#   before any module runs: error_log must be at notice or above;
# - the combined log format's $remote_user is the user of Basic
#   credentials, so a key sent as a Basic user name is logged there;
# - a key put in a URL is logged with the request line.

my @elog = split /\n/, $t->read_file('error.log');
my $alog = $t->read_file('access.log');
my $blog = $t->read_file('backend.log');

my @core = grep { /\[info\] .* client sent (?:duplicate|too long|invalid) header line/ } @elog;
my @other = grep { !/\[info\] .* client sent (?:duplicate|too long|invalid) header line/ } @elog;
my @module = grep { /projkey/ } @elog;

is(join(' ', leaks(join("\n", @module), $key, $dkey, $xkey)), '',
    'no header key in any line the module wrote');
is(join(' ', leaks(join("\n", @other), $key, $dkey, $xkey)), '',
    'no header key in error.log apart from nginx core\'s header errors');
ok(scalar(leaks(join("\n", @core), $key)),
    'nginx core logs refused header lines raw at info (documented)');
is(join(' ', leaks(join("\n", grep { !/api_key=|access_token=|key=|authorization=/i } @other), $qkey)), '',
    'the URL key is in error.log only with its request line');

my @alines = split /\n/, $alog;
my @remote_user = grep { /^127\.0\.0\.1 - sk-project-/ } @alines;
is(join(' ', leaks(join("\n", grep { !/^127\.0\.0\.1 - sk-project-/ } @alines),
    $key, $dkey, $xkey)), '', 'no header key in access.log but $remote_user');
is(scalar(@remote_user), 1,
    'a key sent as Basic user name is logged as $remote_user (documented)');
is(join(' ', leaks($blog, $key, $dkey, $xkey)), '',
    'no header key in backend.log');
like($alog, qr/api_key=\Q$qkey\E/,
    'a key put in the URL is in the access log, as nginx logs URLs');
unlike($alog, qr/Cookie|api_key=\Q$qkey\E"/, 'cookies are not logged');

$t->done();

###############################################################################

# key names found in part (16 characters of the random body) in $data
sub leaks {
    my ($data, @keys) = @_;
    my @found;

    KEY: for my $k (@keys) {
        my $body = substr($k, 11);
        for my $at (0 .. length($body) - 16) {
            if (index($data, substr($body, $at, 16)) >= 0) {
                push @found, substr($k, 0, 15) . '...';
                next KEY;
            }
        }
    }

    return @found;
}

my @crc_table;

sub crc32 {
    my ($s) = @_;

    unless (@crc_table) {
        for my $i (0 .. 255) {
            my $c = $i;
            $c = $c & 1 ? 0xedb88320 ^ ($c >> 1) : $c >> 1 for 1 .. 8;
            push @crc_table, $c;
        }
    }

    my $crc = 0xffffffff;
    $crc = $crc_table[($crc ^ ord $_) & 0xff] ^ ($crc >> 8)
        for split //, $s;

    return $crc ^ 0xffffffff;
}

sub base62_6 {
    my ($v) = @_;
    my $a = join '', 0 .. 9, 'A' .. 'Z', 'a' .. 'z';
    my $out = '';
    for (1 .. 6) {
        $out = substr($a, $v % 62, 1) . $out;
        $v = int($v / 62);
    }
    return $out;
}

sub with_checksum { $_[0] . base62_6(crc32($_[0])) }

sub valid_format {
    my ($k) = @_;
    return $k =~ /^sk-project-[0-9A-Za-z]{48}$/
        && with_checksum(substr($k, 0, 53)) eq $k;
}

# one character of the body (11..52) changed, checksum recomputed
sub near_miss {
    my ($k, $at) = @_;
    my $body = substr($k, 0, 53);
    my $c = substr($body, $at, 1);
    substr($body, $at, 1) = $c eq 'A' ? 'B' : 'A';
    return with_checksum($body);
}

###############################################################################
