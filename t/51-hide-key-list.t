#!/usr/bin/perl

# projkey: projkey_hide_key takes the Authorization element out of the
# request's header list without moving any other: wherever it was in the
# list's parts (20 elements each), first, last or in the middle of its part,
# alone in a part, the other headers reach the backend in order and once,
# the pointers nginx keeps into the list ($http_user_agent, $host) still
# name the list's own headers (lua's set_header of X-Real-IP changes it
# through its pointer: the list must show it), and headers pushed onto the
# list afterwards (lua's ngx.req.set_header) are all there, the key never.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;

use Projkey::Test;
use Projkey::Backend;

###############################################################################

# (headers in all, index of Authorization among them)
my @cases = (
    [1, 0],
    [5, 1], [22, 1], [45, 1],
    [3, 0], [3, 1], [3, 2],
    [4, 0], [4, 1], [4, 3],
    [20, 0], [20, 10], [20, 19],
    [21, 0], [21, 19], [21, 20],
    [25, 19], [25, 20], [25, 22], [25, 24],
    [41, 20], [41, 21], [41, 30], [41, 39], [41, 40],
    [60, 0], [60, 45], [60, 59],
);

# Debian's libnginx-mod-http-lua (scripts/deps installs it)
my $t = Projkey::Test->new()->has(qw/ndk lua/)->plan(3 * @cases + 2);

my ($id, $key) = $t->create_key('hidden in a list');

$t->write_config(<<'EOF')->run();
http {
    projkey_zone keys:4m db=%%TESTDIR%%/keys.db sync=200ms;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /proxy/ {
            projkey keys;
            proxy_set_header X-Seen-UA $http_user_agent;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }

        location /clear/ {
            projkey keys;

            # lua takes X-B out of the last part before the key check
            rewrite_by_lua_block {
                ngx.req.clear_header("X-B")
            }

            content_by_lua_block {
                for i = 1, 25 do
                    ngx.req.set_header("X-Added-" .. i, "v" .. i)
                end
                local h = ngx.req.get_headers(200)
                local added = 0
                for i = 1, 25 do
                    if h["x-added-" .. i] == "v" .. i then
                        added = added + 1
                    end
                end
                ngx.say("added=", added, " b=", h["x-b"] or "none",
                        " auth=", h["authorization"] or "none", " end")
            }
        }

        location /lua/ {
            projkey keys;

            content_by_lua_block {
                ngx.req.set_header("X-Real-IP", "10.0.0.1")
                for i = 1, 25 do
                    ngx.req.set_header("X-Added-" .. i, "v" .. i)
                end
                local h = ngx.req.get_headers(200)
                local added = 0
                for i = 1, 25 do
                    if h["x-added-" .. i] == "v" .. i then
                        added = added + 1
                    end
                end
                local x = h["x-h"]
                if type(x) == "table" then
                    x = table.concat(x, ",")
                end
                ngx.say("x=", x or "", " ua=", ngx.var.http_user_agent or "",
                        " ip=", h["x-real-ip"] or "",
                        " host=", ngx.var.host, " added=", added,
                        " auth=", h["authorization"] or "none", " end")
            }
        }
    }
}
EOF

Projkey::Backend->start(http => $t->port(1));

###############################################################################

for my $c (@cases) {
    my ($n, $p) = @$c;
    my ($proto, $request, $xs, $ua, $host) = make_request($n, $p);
    my $name = "$n headers, key at $p";

    my $r = $t->http("GET /proxy/ $proto\r\n$request\r\n");
    my ($status, undef, $body) = $t->parse_response($r);

    my @got = grep { /^X-H: / } split /\n/, $body;
    is(join(',', map { /^X-H: (.*)$/ } @got), join(',', @$xs),
        "$name: the backend has the other headers in order");
    ok($status == 200 && $body !~ /authorization|\Q$key\E/i
        && ($ua eq '' ? $body !~ /^X-Seen-UA/m
                      : $body =~ /^X-Seen-UA: \Q$ua\E$/m),
        "$name: no key at the backend, \$http_user_agent its own");

    $r = $t->http("GET /lua/ $proto\r\n$request\r\n");
    my $want = 'x=' . join(',', @$xs) . " ua=$ua ip=10.0.0.1"
        . " host=$host added=25 auth=none end";
    like($r, qr/ 200 .*\Q$want\E/s, "$name: headers pushed afterwards");
}

# 40 headers, then a last part of Authorization and X-B: once lua has
# taken X-B out, the key is alone in its part
my $head = join('', map { "X-H: $_\r\n" } 1 .. 38)
    . "Host: localhost\r\nConnection: close\r\n"
    . "Authorization: Bearer $key\r\nX-B: b\r\n";
like($t->http("GET /clear/ HTTP/1.1\r\n$head\r\n"),
    qr/ 200 .*added=25 b=none auth=none end/s,
    'key alone in the last part after another module took one out');

unlike($t->error_log(), qr/\Q$key\E/, 'key not in error.log');

###############################################################################

$t->done();

###############################################################################

# the head of a request of $n header lines with Authorization at index $p;
# the others, in order: User-Agent, X-Real-IP, X-H: 1.., Host and
# Connection last
# (HTTP/1.0 for the key alone, which needs neither)
sub make_request {
    my ($n, $p) = @_;

    my @others = ('User-Agent: ua-test', 'X-Real-IP: 6.6.6.6');
    my $m = $n - 1 - 4;
    push @others, map { "X-H: $_" } 1 .. $m if $m > 0;
    push @others, 'Host: localhost', 'Connection: close';

    # fewer than four: Host and Connection are enough
    @others = @others[-($n - 1) .. -1] if $n - 1 < @others;
    @others = () if $n == 1;

    my @h = @others;
    splice @h, $p, 0, "Authorization: Bearer $key";

    my $ua = (grep { /^User-Agent/ } @h) ? 'ua-test' : '';
    my @xs = map { /^X-H: (.*)$/ ? $1 : () } @h;

    return ($n == 1 ? 'HTTP/1.0' : 'HTTP/1.1', join('', map { "$_\r\n" } @h),
        \@xs, $ua, $n == 1 ? '' : 'localhost');
}

###############################################################################
