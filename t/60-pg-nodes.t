#!/usr/bin/perl

# projkey: three nginx nodes (two workers each) on one private PostgreSQL
# (t/lib/Projkey/Pg.pm), polling only every 30 s: what comes sooner comes
# by notification.  nginx never makes the schema: without "projkey init"
# it does not start.  A write through one node's admin API is in force on
# that node before the answer and on the others within 1 s, as is one made
# with the CLI or by the application's SQL (projkey.change_key); the
# secret reaches neither the
# database nor a log, nor does the URI's password.  With the server
# stopped, both nodes keep enforcing what they have, writes answer 503 with
# nothing of the server in the body, and once it is back they catch up.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep time);

use Projkey::Test;
use Projkey::Admin;
use Projkey::Pg;

###############################################################################

# and the two error.log checks of the second and third nodes
my $t = Projkey::Test->new()->plan(59);
my $t2 = Projkey::Test->new();
$t2->{checks} = 1;
my $t3 = Projkey::Test->new();
$t3->{checks} = 1;

my $pg = Projkey::Pg->new();
my $uri = $pg->uri;
my $pw = $pg->password;

my $conf = <<'EOF';
worker_processes 2;

http {
    projkey_zone keys:4m db=%%URI%% sync=30s node=%%NODE%%;

    server {
        listen 127.0.0.1:%%PORT_0%%;

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
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;
        return 200 "ok $http_x_name\n";
    }
}

EOF

for ([$t, 'pg-a'], [$t2, 'pg-b'], [$t3, 'pg-c']) {
    my ($n, $name) = @$_;
    (my $c = $conf) =~ s/%%URI%%/$uri/;
    $c =~ s/%%NODE%%/$name/;
    $n->write_config($c);
}

###############################################################################

# nginx neither makes nor changes the schema: only projkey init does

my ($rc, $out) = $t->nginx_t();
isnt($rc, 0, 'nginx -t: no schema yet, fails');
like($out, qr/no projkey schema: run "projkey --db URI init" in \S+nginx\.conf:\d+/,
    "and says to run projkey init, with the file and line") or diag($out);
unlike($out, qr/\Q$pw\E/, 'without the password');
like($out, qr{postgresql://projkey:\.\.\.\@127\.0\.0\.1:\d+/projkey},
    'the URI shown without it');
is($pg->psql("SELECT count(*) FROM pg_namespace WHERE nspname = 'projkey'",
    db => 'projkey'), "0\n", 'the check made no schema');

($rc) = $t->cli({ db => $uri }, 'init');
is($rc, 0, 'projkey init');

my ($id0, $key0) = $t->create_key('before start', db => $uri);

($rc, $out) = $t->nginx_t();
is($rc, 0, 'nginx -t: with the schema, passes') or diag($out);

$_->run() for $t, $t2, $t3;

my $a = Projkey::Admin->new($t, user => 'alice');
my $b = Projkey::Admin->new($t2, user => 'bob');
my $c = Projkey::Admin->new($t3, user => 'carol');

like(api($t, $key0), qr/ 200 .*ok before start/s, 'node a: key made before');
like(api($t2, $key0), qr/ 200 .*ok before start/s, 'node b: key made before');

# a write on a: in force on a's two workers before the answer, on b soon

my $r = $a->call('POST', 'keys', { name => 'made on a' });
is($r->{status}, 201, 'create on a: 201');
my $key1 = $r->{json}{secret};
my $id1 = $r->{json}{key}{id};
ok($r->{json}{revision} > 0, 'the answer has its revision');

ok(on_all_workers($t, $key1, qr/ 200 .*ok made on a/s),
    'in force on every worker of a at once');
my ($ok, $took) = until_match($t2, $key1, qr/ 200 .*ok made on a/s);
ok($ok, 'and on b');
cmp_ok($took, '<', 1, 'within 1 s');
($ok, $took) = until_match($t3, $key1, qr/ 200 .*ok made on a/s);
ok($ok && $took < 1, 'and on c within 1 s');

# a write on c: on a and b

$r = $c->call('PATCH', "keys/$id1", { name => 'renamed on c' });
is($r->{status}, 200, 'rename on c: 200');
ok(on_all_workers($t3, $key1, qr/ 200 .*ok renamed on c/s),
    'in force on every worker of c at once');
($ok, $took) = until_match($t, $key1, qr/ 200 .*ok renamed on c/s);
ok($ok && $took < 1, 'on a within 1 s');
($ok, $took) = until_match($t2, $key1, qr/ 200 .*ok renamed on c/s);
ok($ok && $took < 1, 'on b within 1 s');

# a write on b: the other way round

$r = $b->call('PATCH', "keys/$id1", { status => 'disabled' });
is($r->{status}, 200, 'disable on b: 200');
ok(on_all_workers($t2, $key1, qr/ 401 .*api_key_disabled/s),
    'rejected on every worker of b at once');
($ok, $took) = until_match($t, $key1, qr/ 401 .*api_key_disabled/s);
ok($ok && $took < 1, 'and on a within 1 s');
($ok, $took) = until_match($t3, $key1, qr/ 401 .*api_key_disabled/s);
ok($ok && $took < 1, 'and on c within 1 s');

# the application's SQL, through the schema's function: on all three

my $sql = $pg->psql("SELECT seq FROM projkey.change_key('default', '$id0',"
    . " 'renamed by sql', 0, false, NULL,"
    . " extract(epoch FROM now())::bigint, 'app', '127.0.0.1')",
    user => $pg->user, db => 'projkey');
like($sql, qr/^\d+$/m, 'projkey.change_key: a revision');
my @on = map { (until_match($_, $key0, qr/ok renamed by sql/))[0] }
    $t, $t2, $t3;
is("@on", '1 1 1', 'the name by SQL on all three nodes');

# the CLI's writes reach both

($rc) = $t->cli({ db => $uri }, 'rename', $id0, 'renamed by the cli');
is($rc, 0, 'cli rename');
($ok) = until_match($t, $key0, qr/ok renamed by the cli/);
my ($ok2) = until_match($t2, $key0, qr/ok renamed by the cli/);
ok($ok && $ok2, 'the new name on both nodes');

# both nodes in GET nodes, at the revision of the last write

$r = $a->call('GET', 'nodes');
my $last = $r->{json}{revision};
my $nodes = $t->wait_for(8, sub {
    my $n = $a->call('GET', 'nodes')->{json}{nodes} // [];
    my %at = map { $_->{node} => $_->{revision} } @$n;
    (grep { ($at{$_} // -1) == $last } qw(pg-a pg-b pg-c)) == 3
        ? \%at : undef;
});
ok($nodes, 'GET nodes: the three nodes, all at the last revision')
    or diag(explain($a->call('GET', 'nodes')->{json}));

# no secret in the database

my $dump = $pg->psql("SELECT string_agg(t::text, ' ') FROM ("
    . ' SELECT k::text AS t FROM projkey.keys k'
    . ' UNION ALL SELECT c::text FROM projkey.changes c'
    . ' UNION ALL SELECT e::text FROM projkey.audit e'
    . ' UNION ALL SELECT r::text FROM projkey.retired r) x', db => 'projkey');
ok(length $dump > 100, 'the database has the keys');
unlike($dump, qr/\Q$key0\E|\Q$key1\E/, 'and no secret');
unlike($dump, qr/\Q@{[ substr($key1, 11, 42) ]}\E/,
    'nor the random part of one');

# the server goes: both nodes keep checking keys as they were

$r = $a->call('POST', 'keys', { name => 'last before' });
my $key2 = $r->{json}{secret};
ok(on_all_workers($t2, $key2, qr/ 200 /) || until_match($t2, $key2, qr/ 200 /),
    'a key made just before the server goes');

$pg->halt();

like(api($t, $key0), qr/ 200 .*ok renamed by the cli/s,
    'server down: a accepts an active key');
like(api($t2, $key2), qr/ 200 /, 'b too');
like(api($t3, $key0), qr/ 200 /, 'and c');
like(api($t, $key1), qr/ 401 .*api_key_disabled/s,
    'a still rejects a disabled one');
like(api($t2, 'sk-project-' . ('A' x 48)), qr/ 401 /,
    'b still rejects a key it never had');

$r = $a->call('POST', 'keys', { name => 'while down' });
is($r->{status}, 503, 'a write while down: 503');
is($r->{json}{error}{code}, 'database_unavailable', 'database_unavailable')
    or diag($r->{body});
unlike($r->{body}, qr/127\.0\.0\.1|postgres|5432|$pg->{port}|refused/i,
    'the answer names no server, port or library message');

my $cnt = $t->wait_for(5, sub {
    my $log = $t->error_log;
    $log =~ /connection to database .* is lost|cannot be opened/ ? $log : '';
});
like($cnt, qr/projkey_zone "keys": .*unreachable/,
    'a\'s error.log says the server is unreachable');

$r = $b->call('PATCH', "keys/$id1", { status => 'active' });
is($r->{status}, 503, 'b: an enable while down is not applied');
like(api($t2, $key1), qr/ 401 .*api_key_disabled/s,
    'and the key stays rejected');

# back: both nodes catch up with what was written meanwhile

$pg->resume();

($rc) = $t->cli({ db => $uri }, 'enable', $id1);
is($rc, 0, 'the server is back: cli enable');

($ok, $took) = until_match($t, $key1, qr/ 200 /, 15);
ok($ok, 'a applies it');
($ok) = until_match($t2, $key1, qr/ 200 /, 15);
ok($ok, 'so does b');

# the first write on each worker works: a connection the restart closed
# is found idle, not by failing a write
$r = $b->call('POST', 'keys', { name => 'after' });
is($r->{status}, 201, 'b writes again at once') or diag($r->{body});
my $key3 = $r->{json}{secret} // 'none';
like(api($t2, $key3), qr/ 200 .*ok after/s, 'in force on b at once');
($ok) = until_match($t, $key3, qr/ 200 .*ok after/s);
ok($ok, 'and on a');

like($t->error_log, qr/is reachable again/, 'a says it is reachable again');

# deleted on a: gone on both

$r = $a->call('DELETE', "keys/$id0");
is($r->{status}, 204, "delete on a: 204") or diag($r->{raw});
like(api($t, $key0), qr/ 401 .*invalid_api_key/s, 'rejected on a at once');
($ok) = until_match($t2, $key0, qr/ 401 .*invalid_api_key/s);
my ($ok3) = until_match($t3, $key0, qr/ 401 .*invalid_api_key/s);
ok($ok && $ok3, 'and on b and c');

# neither a secret nor the password in any node's logs

$_->stop() for $t, $t2, $t3;

my $logs = join '', map {
    $_->error_log . $_->read_file('access.log')
} $t, $t2, $t3;

unlike($logs, qr/\Q$pw\E/, 'the password is in no log');
unlike($logs, qr/\Q$key0\E|\Q$key1\E|\Q$key2\E|\Q$key3\E/,
    'nor any secret');

###############################################################################

sub api {
    my ($n, $key) = @_;
    return $n->http("GET /api/ HTTP/1.0\r\nHost: localhost\r\n"
        . "Authorization: Bearer $key\r\n\r\n");
}

# a new connection lands on either worker: enough tries reach both
sub on_all_workers {
    my ($n, $key, $re) = @_;
    for (1 .. 20) {
        return 0 unless api($n, $key) =~ $re;
    }
    return 1;
}

sub until_match {
    my ($n, $key, $re, $timeout) = @_;
    my $start = time;
    my $deadline = $start + ($timeout // 3);

    while (time < $deadline) {
        return (1, time - $start) if api($n, $key) =~ $re;
        sleep 0.02;
    }

    return (0, time - $start);
}

###############################################################################
