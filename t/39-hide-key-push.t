#!/usr/bin/perl

# projkey: projkey_hide_key takes the Authorization header out of the
# request's header list; a module that adds a request header after the
# access phase (lua's ngx.req.set_header pushes onto that list) must find
# a sound list: the header is there, the key is not, nothing is written
# anywhere else (the ASan run of the suite checks the last).  Every other
# header stays, in order, wherever in the list's parts (20 elements each)
# the key was (t/51 tries every place).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;

use Projkey::Test;

###############################################################################

# Debian's libnginx-mod-http-lua (scripts/deps installs it)
my $t = Projkey::Test->new()->has(qw/ndk lua/)->plan(7);

my ($id, $key) = $t->create_key('pushed after');

$t->write_config(<<"EOF")->run();
http {
    projkey_zone keys:4m db=%%TESTDIR%%/keys.db sync=200ms;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /lua/ {
            projkey keys;

            # a header added after the key check, then the list read back
            content_by_lua_block {
                for i = 1, 40 do
                    ngx.req.set_header("X-Added-" .. i, "v" .. i)
                end
                local h = ngx.req.get_headers(100)
                local n = 0
                for i = 1, 40 do
                    if h["x-added-" .. i] == "v" .. i then n = n + 1 end
                end
                ngx.say("added=", n, " auth=", h["authorization"] or "none",
                        " host=", h["host"] or "none")
            }
        }

        location /order/ {
            projkey keys;

            content_by_lua_block {
                local h = ngx.req.get_headers(100)
                local d = h["x-dup"]
                ngx.say("dup=", type(d) == "table" and table.concat(d, ",")
                                or tostring(d),
                        " auth=", h["authorization"] or "none",
                        " host=", h["host"] or "none")
            }
        }
    }
}
EOF

my $r = $t->get('/lua/', Authorization => "Bearer $key");
like($r, qr/^HTTP\/1\.1 200 /, 'accepted');
like($r, qr/added=40 /, 'the 40 headers added after the check are in the list');
like($r, qr/auth=none /, 'the Authorization header stays hidden');

# Host and Connection come first: the key is the 27th element (second part)
# or the 5th (first part)
my $all = join(',', 1 .. 30);

$r = $t->get('/order/', (map { ('X-Dup' => $_) } 1 .. 24),
    Authorization => "Bearer $key", (map { ('X-Dup' => $_) } 25 .. 30));
like($r, qr/ 200 .*dup=\Q$all\E auth=none host=localhost/s,
    'key in the second part: the other headers kept in order');

$r = $t->get('/order/', (map { ('X-Dup' => $_) } 1 .. 2),
    Authorization => "Bearer $key", (map { ('X-Dup' => $_) } 3 .. 30));
like($r, qr/ 200 .*dup=\Q$all\E auth=none host=localhost/s,
    'key in the first part: the other headers kept in order');

$r = $t->get('/order/', (map { ('X-Dup' => $_) } 1 .. 30),
    Authorization => "Bearer $key");
like($r, qr/ 200 .*dup=\Q$all\E auth=none host=localhost/s,
    'key last: the other headers kept in order');

$r = $t->get('/order/', Authorization => "Bearer $key");
like($r, qr/ 200 .*dup=nil auth=none host=localhost/s,
    'key with Host and Connection only');

###############################################################################

$t->done();

###############################################################################
