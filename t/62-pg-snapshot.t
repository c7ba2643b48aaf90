#!/usr/bin/perl

# projkey: snapshot= of a PostgreSQL node.  Worker 0 writes the zone to a
# local SQLite file (no secret in it) once its revision moves; a node
# started while the server is out of reach starts from it, says so, and
# enforces what it holds (active, disabled, a rolled key's two secrets);
# once the server is back it catches up from the snapshot's revision, not
# with a full reload.  nginx -t passes with a warning then, and fails when
# there is no snapshot; a damaged snapshot stops the start; snapshot= with
# an SQLite file is refused.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use POSIX qw(strftime);
use Test::More;
use Time::HiRes qw(sleep time);

use Projkey::Test;
use Projkey::Pg;

###############################################################################

my $t = Projkey::Test->new()->plan(31);

# the start from the snapshot is said at warn; a failed one at emerg
$t->expect_errors(qr/no snapshot .* to start from either|snapshot cannot be read|cannot load database/);

my $pg = Projkey::Pg->new();
my $uri = $pg->uri;
my $d = $t->testdir;
my $snap = "$d/snap.db";

my ($rc) = $t->cli({ db => $uri }, 'init');
die "projkey init failed\n" if $rc;

my ($id1, $k1) = $t->create_key('active one', db => $uri);
my ($id2, $k2) = $t->create_key('disabled one', db => $uri);
my ($id3, $k3old) = $t->create_key('rolled one', db => $uri);
$t->cli({ db => $uri }, 'disable', $id2);
my $later = strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time + 3600));
my $rolled = $t->cli_json({ db => $uri }, 'roll', $id3,
    '--previous-expires', $later);
my $k3 = $rolled->{secret} // die "roll failed\n";

my $conf = <<"EOF";
http {
    projkey_zone keys:4m db=$uri sync=500ms flush=1s node=snap
                 snapshot=%%TESTDIR%%/snap.db;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /admin/ {
            projkey_admin         keys;
            projkey_admin_user    tester;
        }

        location /api/ {
            projkey keys;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
            proxy_set_header X-Name \$projkey_key_name;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;
        return 200 "ok \$http_x_name\\n";
    }
}

EOF

$t->write_config($conf)->run();

ok($t->wait_for(5, sub { -s $snap }), 'the snapshot is written');
is(snap_sql('SELECT count(*) FROM nodes'), "4\n",
    'four nodes: three keys, one previous secret');
is(snap_sql("SELECT v FROM meta WHERE k = 'revision'"),
    $pg->psql('SELECT value FROM projkey.revision', db => 'projkey'),
    'at the database\'s revision');

my $bytes = $t->read_file('snap.db');
unlike($bytes, qr/\Q$k1\E|\Q$k2\E|\Q$k3\E|\Q$k3old\E/, 'no secret in it');
unlike($bytes, qr/\Q@{[ substr($k1, 11, 42) ]}\E/,
    'nor the random part of one');
unlike($bytes, qr/\Q@{[ $pg->password ]}\E/, 'nor the password');

$t->stop();

# the server out of reach: nginx -t warns, the start loads the snapshot

$pg->halt();

my ($trc, $out) = $t->nginx_t();
is($trc, 0, 'nginx -t with the server down and a snapshot: passes')
    or diag($out);
like($out, qr/\[warn\].*cannot be reached.*starts from snapshot/,
    'with a warning');

$t->run();

like($t->error_log, qr/started from snapshot "\Q$snap\E" of revision \d+, in touch with the database \d+ s before/,
    'the start says it came from the snapshot');
like(api($k1), qr/ 200 .*ok active one/s, 'an active key works');
like(api($k2), qr/ 401 .*api_key_disabled/s, 'a disabled one does not');
like(api($k3), qr/ 200 .*ok rolled one/s, 'a rolled key\'s new secret works');
like(api($k3old), qr/ 200 /, 'and its previous one, until its end');
like(api('sk-project-' . ('A' x 48)), qr/ 401 .*invalid_api_key/s,
    'an unknown key is rejected');

my $r = $t->http("POST /admin/keys HTTP/1.0\r\nHost: x\r\n"
    . "Content-Type: application/json\r\nContent-Length: 12\r\n\r\n"
    . '{"name":"x"}');
like($r, qr/^HTTP\/1\.1 503 .*database_unavailable/s,
    'an admin write: 503, nothing changed');

# back: a catch-up from the snapshot's revision, not a full reload

$pg->resume();

my ($id5, $k5) = $t->create_key('made after', db => $uri);
($rc) = $t->cli({ db => $uri }, 'disable', $id1);
is($rc, 0, 'the server is back: changes by the CLI');

ok($t->wait_for(10, sub { api($k5) =~ / 200 .*ok made after/s }),
    'the node catches up: a new key');
ok($t->wait_for(5, sub { api($k1) =~ /api_key_disabled/ }),
    'and a disable');
like(api($k3), qr/ 200 /, 'the rest stays');
unlike($t->error_log, qr/now matches database|is loaded again/,
    'a catch-up, not a full reload');

ok($t->wait_for(5, sub {
    snap_sql("SELECT v FROM meta WHERE k = 'revision'")
        eq $pg->psql('SELECT value FROM projkey.revision', db => 'projkey')
}), 'the snapshot follows the new revision');
is(snap_sql('SELECT count(*) FROM nodes'), "5\n", 'with the new key');

$t->stop();

# no snapshot to start from: nginx -t and the start fail

$pg->halt();
rename $snap, "$snap.kept" or die "rename: $!\n";

($trc, $out) = $t->nginx_t();
isnt($trc, 0, 'no snapshot and no server: nginx -t fails');
like($out, qr/cannot be used: the database is unreachable/, 'and says why');

# a damaged snapshot stops the start

$t->write_file('snap.db', 'x' x 4096);
($trc, $out) = $t->run_cmd($t->nginx_args("$d/error.log"));
isnt($trc, 0, 'a damaged snapshot: nginx does not start');
like($t->error_log, qr/the snapshot cannot be read: .*snap\.db/,
    'and says why');

rename "$snap.kept", $snap or die "rename: $!\n";

# a server that answers and refuses is not out of reach: no snapshot then

$pg->resume();
(my $wrong = $uri) =~ s/:(\w+)\@/:wrong$1\@/;
$t->write_config(<<"EOF");
http {
    projkey_zone keys:4m db=$wrong snapshot=%%TESTDIR%%/snap.db;
}
EOF
($trc, $out) = $t->nginx_t();
isnt($trc, 0, 'a wrong password: nginx -t fails, snapshot or not');
like($out, qr/password authentication failed/, 'and says why');

# one file, one zone

$t->write_config(<<"EOF");
http {
    projkey_zone a:4m db=$uri snapshot=%%TESTDIR%%/snap.db;
    projkey_zone b:4m db=$uri snapshot=%%TESTDIR%%/snap.db;
}
EOF
($trc, $out) = $t->nginx_t();
like($out, qr/projkey_zone "a" and "b" name the same file/,
    'two zones, one snapshot: refused');

$t->write_config(<<"EOF");
http {
    projkey_zone a:4m db=%%TESTDIR%%/keys.db;
    projkey_zone b:4m db=$uri snapshot=%%TESTDIR%%/keys.db;
}
EOF
($trc, $out) = $t->nginx_t();
like($out, qr/projkey_zone "a" and "b" name the same file/,
    'a snapshot on another zone\'s SQLite file: refused');

# snapshot= is for PostgreSQL only

$t->write_config(<<'EOF');
http {
    projkey_zone z:4m db=%%TESTDIR%%/keys.db snapshot=%%TESTDIR%%/s.db;
}
EOF
($trc, $out) = $t->nginx_t();
like($out, qr/"snapshot=" is for a PostgreSQL database/,
    'snapshot= with an SQLite file: refused');

###############################################################################

sub api {
    my ($key) = @_;
    return $t->http("GET /api/ HTTP/1.0\r\nHost: localhost\r\n"
        . "Authorization: Bearer $key\r\n\r\n");
}

sub snap_sql {
    my ($sql) = @_;
    my (undef, $v) = $t->run_cmd('sqlite3', $snap, $sql);
    return $v;
}

###############################################################################
