#!/usr/bin/perl

# projkey: a node cut off from PostgreSQL by the network, not by a stopped
# server.  Node a runs here, node b in a network namespace of its own
# (t/lib/Projkey/Netns.pm) that reaches the server over a veth pair;
# every IP packet on that pair is then dropped at both ends, so b's
# packets are lost: no reset, no ICMP, its sessions and connects only
# time out.  Meanwhile a goes on writing.  b keeps enforcing
# what it had (fail-static), a zone with max_stale= turns to 503 once b has
# been out of touch that long, an admin write on b answers 503 within the
# connection's timeouts and changes nothing, and once the link is back b
# catches up with what a wrote, with no restart.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep time);

use Projkey::Test;
use Projkey::Admin;
use Projkey::Netns;
use Projkey::Pg;

###############################################################################

my $ns = Projkey::Netns->new();

# and the two error.log checks of node b
my $t = Projkey::Test->new()->plan(28);
my $tb = Projkey::Test->new(netns => $ns->name, host => $ns->inside);
$tb->{checks} = 1;

my $pg = Projkey::Pg->new(listen => $ns->outside, allow => $ns->net);
my $pw = $pg->password;

my ($rc) = $t->cli({ db => $pg->uri }, 'init');
die "projkey init failed\n" if $rc;

my ($id0, $key0) = $t->create_key('before', db => $pg->uri);
my ($id1, $key1) = $t->create_key('in touch', db => $pg->uri);

my $conf = <<'EOF';
http {
    projkey_zone keys:4m db=%%URI%% sync=250ms node=%%NODE%%;
    projkey_zone strict:4m db=%%URI%% sync=250ms max_stale=3s node=%%NODE%%-s;

    server {
        listen %%HOST%%:%%PORT_0%%;

        location /admin/ {
            projkey_admin         keys;
            projkey_admin_user    $http_x_user;
            projkey_admin_project default;
        }

        location /api/ {
            projkey keys;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
            proxy_set_header X-Name $projkey_key_name;
        }

        location /strict/ {
            projkey strict;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;
        return 200 "ok $http_x_name\n";
    }
}

EOF

for ([$t, 'a', $pg->uri, '127.0.0.1'],
     [$tb, 'b', $pg->uri(host => $ns->outside), $ns->inside])
{
    my ($n, $name, $uri, $host) = @$_;
    (my $c = $conf) =~ s/%%URI%%/$uri/g;
    $c =~ s/%%NODE%%/$name/g;
    $c =~ s/%%HOST%%/$host/g;
    $n->write_config($c);
}

$_->run() for $t, $tb;

my $a = Projkey::Admin->new($t, user => 'alice');
my $b = Projkey::Admin->new($tb, user => 'bob');

like(get($tb, '/api/', $key0), qr/ 200 .*ok before/s,
    'b, in its namespace: the key made before start');

# in touch: a's write reaches b

my $r = $a->call('PATCH', "keys/$id1", { status => 'disabled' });
is($r->{status}, 200, 'in touch: disable on a');
my ($ok, $took) = until_match($tb, '/api/', $key1, qr/ 401 .*disabled/s, 3);
ok($ok && $took < 1, 'in force on b within 1 s');

# the link is cut: b's packets are lost

$ns->cut();
my $cut = time;

$r = $a->call('PATCH', "keys/$id0", { status => 'disabled' });
is($r->{status}, 200, 'cut off: a still writes (it reaches the server)');
like(get($t, '/api/', $key0), qr/ 401 .*disabled/s, 'in force on a');

$r = $a->call('POST', 'keys', { name => 'made during the cut' });
is($r->{status}, 201, 'a creates a key meanwhile');
my $key2 = $r->{json}{secret} // 'none';

like(get($tb, '/api/', $key0), qr/ 200 .*ok before/s,
    'b knows nothing of it: fail-static, the key it had still works');
like(get($tb, '/api/', $key2), qr/ 401 .*invalid_api_key/s,
    'and the new key is unknown to b');
like(get($tb, '/api/', 'sk-project-' . ('A' x 48)), qr/ 401 /,
    'an unknown key: still rejected');

# max_stale: 503 on b once it has been out of touch for 3 s

$r = $tb->wait_for(10, sub {
    my $r = get($tb, '/strict/', $key0);
    $r =~ / 503 / ? $r : undef;
});
ok($r, 'max_stale=3s zone on b: 503');
# it counts from b's last read, up to a sync (250 ms) and a second's
# rounding before the cut
cmp_ok(time - $cut, '>=', 2, 'not before about 3 s out of touch');
like($r, qr/key_store_unavailable/, 'key_store_unavailable');
like($r, qr/\r\nRetry-After: \d+\r\n/, 'with Retry-After');

# an admin write on b: 503 once its session times out; nothing changed

my $t0 = time;
$r = $b->call('POST', 'keys', { name => 'written on b' }, -timeout => 40);
my $write_took = time - $t0;
is($r->{status}, 503, 'a write on b, cut off: 503') or diag($r->{raw});
like($r->{body}, qr/database_unavailable/, 'database_unavailable');
unlike($r->{raw}, qr/10\.213\.|127\.0\.0\.1|\Q$pg->{port}\E|postgres/i,
    'the answer names no server');
cmp_ok($write_took, '<', 30, 'within the connection timeouts (< 30 s)');
note(sprintf 'the write on b answered 503 after %.1f s', $write_took);

# the link lets packets through again: b catches up by itself

$ns->heal();
my $healed = time;

($ok, $took) = until_match($tb, '/api/', $key0, qr/ 401 .*disabled/s, 40);
ok($ok, 'b applies the disable made during the cut');
note(sprintf 'b caught up %.1f s after the link came back', $took);
($ok) = until_match($tb, '/api/', $key2, qr/ 200 .*made during the cut/s, 5);
ok($ok, 'and knows the key made meanwhile');
($ok) = until_match($tb, '/strict/', $key2, qr/ 200 /, 10);
ok($ok, 'max_stale zone: keys work again');

$r = $b->call('POST', 'keys', { name => 'after' }, -timeout => 20);
is($r->{status}, 201, 'b writes again') or diag($r->{raw});
like(get($tb, '/api/', $r->{json}{secret} // 'none'), qr/ 200 .*ok after/s,
    'in force on b at once');
($ok) = until_match($t, '/api/', $r->{json}{secret} // 'none',
    qr/ 200 .*ok after/s, 3);
ok($ok, 'and on a');

is($pg->psql("SELECT count(*) FROM projkey.keys WHERE name = 'written on b'",
    db => 'projkey'), "0\n", 'the write refused on b is not in the database');

$_->stop() for $t, $tb;

my $logs = join '', map { $_->error_log } $t, $tb;
unlike($logs, qr/\Q$pw\E/, 'the password is in no log');
unlike($logs, qr/\Q$key0\E|\Q$key1\E|\Q$key2\E/, 'nor any secret');

###############################################################################

sub get {
    my ($n, $uri, $key) = @_;
    return $n->http("GET $uri HTTP/1.0\r\nHost: localhost\r\n"
        . "Authorization: Bearer $key\r\n\r\n");
}

sub until_match {
    my ($n, $uri, $key, $re, $timeout) = @_;
    my $start = time;
    my $deadline = $start + $timeout;

    while (time < $deadline) {
        return (1, time - $start) if get($n, $uri, $key) =~ $re;
        sleep 0.05;
    }

    return (0, time - $start);
}

###############################################################################
