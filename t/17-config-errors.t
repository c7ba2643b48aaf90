#!/usr/bin/perl

# projkey: "nginx -t" rejects bad configurations and says where and why.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::SHA ();
use Test::More;

use Projkey::Test;

###############################################################################

my $t = Projkey::Test->new()->plan(29);

# the failing cases below log [emerg] on purpose
$t->expect_errors(qr/\[emerg\]/);

my $d = $t->testdir;

# a valid SQLite file that is not a projkey database
system('sqlite3', "$d/other.db", 'create table t(x)') == 0
    or die "sqlite3 failed\n";

# random bytes
open my $fh, '<', '/dev/urandom' or die "urandom: $!\n";
read $fh, my $junk, 8192;
close $fh;
$t->write_file('corrupt.db', $junk);

# a root-owned directory that "nobody" cannot write to
mkdir "$d/rootonly" or die "mkdir: $!\n";
chmod 0755, "$d/rootonly";

###############################################################################

# the configuration is valid as a baseline

my ($rc, $out) = test_conf(zone('projkey_zone keys:4m db=%%TESTDIR%%/keys.db;'));
is($rc, 0, 'valid configuration') or diag($out);

($rc, $out) = test_conf(zone('projkey_zone keys:4m db=%%TESTDIR%%/keys2.db '
    . 'sync=250ms;'));
is($rc, 0, 'valid configuration with sync') or diag($out);

# directive syntax

fails(zone('projkey_zone keys:4m db=%%TESTDIR%%/a.db;', 'projkey nosuch;'),
    qr/zone/i, 'unknown zone in projkey', qr/^\s*projkey\s/);
fails(zone('projkey_zone keys:4m db=%%TESTDIR%%/b.db;', 'projkey;'),
    qr/argument/i, 'projkey without zone name', qr/^\s*projkey;/);
fails(zone('projkey_zone keys:4m db=%%TESTDIR%%/c.db;', 'projkey keys bogus;'),
    qr/bogus|invalid|parameter/i, 'projkey with a bad parameter',
    qr/^\s*projkey\s/);
fails(zone('projkey_zone keys:abc db=%%TESTDIR%%/d.db;'),
    qr/size|invalid/i, 'bad size');
fails(zone('projkey_zone keys db=%%TESTDIR%%/e.db;'),
    qr/size|invalid/i, 'no size');
fails(zone('projkey_zone keys:8k db=%%TESTDIR%%/f.db;'),
    qr/small/i, 'too small size');
fails(zone('projkey_zone keys:4m;'),
    qr/db/i, 'missing db=');
fails(zone('projkey_zone keys:4m db=;'),
    qr/db|path|empty|invalid/i, 'empty db=');
fails(zone('projkey_zone keys:4m db=postgresql://u:secretpw@127.0.0.1:1/keys;'),
    qr{database "postgresql://u:\.\.\.\@127\.0\.0\.1:1/keys" cannot be used: the database is unreachable: .*refused(?!.*secretpw)}s,
    'a PostgreSQL server out of reach, its password not shown');
fails(zone('projkey_zone keys:4m db=%%TESTDIR%%/g.db sync=abc;'),
    qr/sync|invalid/i, 'bad sync=');
fails(zone('projkey_zone keys:4m db=%%TESTDIR%%/h.db foo=bar;'),
    qr/foo|invalid|unknown|parameter/i, 'unknown parameter');
fails(zone("projkey_zone keys:4m db=%%TESTDIR%%/i.db;\n"
    . "    projkey_zone keys:4m db=%%TESTDIR%%/j.db;"),
    qr/duplicate|already/i, 'duplicate zone name');

# the database

fails(zone('projkey_zone keys:4m db=%%TESTDIR%%/nodir/keys.db;'),
    qr/director|no such file/i, 'db directory does not exist');
fails(zone('projkey_zone keys:4m db=%%TESTDIR%%/other.db;'),
    qr/not a projkey database|corrupt/i, 'not a projkey database');
fails(zone('projkey_zone keys:4m db=%%TESTDIR%%/corrupt.db;'),
    qr/not a projkey database|corrupt|not a database/i, 'corrupt db');
fails("user nobody nogroup;\n"
    . zone('projkey_zone keys:4m db=%%TESTDIR%%/rootonly/keys.db;'),
    qr/writ|permission|access|denied/i, 'db directory not writable by workers');

# the admin location

fails(zone('projkey_zone keys:4m db=%%TESTDIR%%/k.db;', 'projkey_admin keys;'),
    qr/"projkey_admin" needs "projkey_admin_user".*verified identity.*remote_user/,
    'projkey_admin without projkey_admin_user', qr/^\s*projkey_admin\s/);
fails(zone('projkey_zone keys:4m db=%%TESTDIR%%/k.db;',
    "}\n        location ~ ^/adm/ {\n            projkey_admin keys;\n"
    . "            projkey_admin_user admin;"),
    qr/"projkey_admin" directive cannot be in a regex location/,
    'projkey_admin in a regex location', qr/^\s*projkey_admin\s/);
fails(zone('projkey_zone keys:4m db=%%TESTDIR%%/k.db;',
    "}\n        location \@adm {\n            projkey_admin keys;\n"
    . "            projkey_admin_user admin;"),
    qr/"projkey_admin" directive cannot be in a named location/,
    'projkey_admin in a named location', qr/^\s*projkey_admin\s/);
($rc, $out) = test_conf(zone("projkey_zone keys:4m db=%%TESTDIR%%/k.db;\n"
    . '    projkey_admin_user $remote_user;', 'projkey_admin keys;'));
is($rc, 0, 'projkey_admin_user inherited from the location above')
    or diag($out);

# "nginx -t" never changes an existing database: an older schema is
# migrated by a real start (or "projkey migrate"), not by a check

my $old = "$d/v1.db";
($rc) = $t->cli({ db => $old }, 'create', 'old key');
die "projkey create failed\n" if $rc;
# schema 1: what later steps added taken out again
($rc) = $t->run_cmd('sqlite3', $old, 'DROP TRIGGER keys_changed_by_hand; '
    . 'DROP TRIGGER keys_deleted_by_hand; DROP INDEX keys_prev_expires; '
    . 'ALTER TABLE keys DROP COLUMN expires_at; '
    . 'ALTER TABLE keys DROP COLUMN prev_hash; '
    . 'ALTER TABLE keys DROP COLUMN prev_preview; '
    . 'ALTER TABLE keys DROP COLUMN prev_expires_at; DROP TABLE retired; '
    . 'DROP TABLE nodes; '
    . 'PRAGMA user_version=1; '
    . 'PRAGMA wal_checkpoint(TRUNCATE);');
die "sqlite3 failed\n" if $rc;
my $before = file_state($old);

($rc, $out) = test_conf(zone('projkey_zone keys:4m db=%%TESTDIR%%/v1.db;'));
is($rc, 0, 'nginx -t on a database of an older schema') or diag($out);
is(file_state($old), $before, 'nginx -t: the file is unchanged');
is(schema($old), 1, 'nginx -t: the schema is not migrated');

$t->run();
is(schema($old), 3, 'a real start migrates the schema');

# a reload never puts an empty database in place of a missing one
rename $old, "$old.away" or die "rename: $!\n";
$t->write_config(zone('projkey_zone keys:4m db=%%TESTDIR%%/v1.db sync=2s;'));
kill 'HUP', $t->{master};
ok($t->wait_for(5, sub { $t->error_log
    =~ /database ".*v1\.db" is missing: restore it; only a start creates one/ }),
    'a reload with the database missing is refused, saying why');
ok(!-e $old, 'and creates no file');
rename "$old.away", $old or die "rename: $!\n";
$t->stop();

($rc, $out) = test_conf(zone('projkey_zone keys:4m db=%%TESTDIR%%/new.db;'));
ok($rc == 0 && schema("$d/new.db") == 3,
    'nginx -t creates a missing database with its schema') or diag($out);

###############################################################################

$t->done();

###############################################################################

# an http block with a zone line and a location using it
sub zone {
    my ($zone, $use) = @_;
    $use //= 'projkey keys;';

    return <<"EOF";
http {
    $zone

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location / {
            $use
        }
    }
}
EOF
}

# modification time and content of a database, and what its WAL holds (an
# empty WAL, which any reader may make, holds what no WAL does)
sub file_state {
    my ($db) = @_;
    return join ' ', map {
        my @st = stat;
        my $data = -e $_ ? do { local (@ARGV, $/) = $_; <> } : '';
        "$_:" . ($_ eq $db ? $st[9] : '') . ':' . length($data) . ':'
            . Digest::SHA::sha256_hex($data);
    } $db, "$db-wal";
}

sub schema {
    my ($db) = @_;
    my (undef, $v) = $t->run_cmd('sqlite3', $db, 'PRAGMA user_version;');
    chomp $v;
    return $v;
}

sub test_conf {
    my ($text) = @_;
    $t->write_config($text);
    return $t->nginx_t();
}

# nginx -t fails, names the file and the line of the directive at fault
# (the last line matching $at, by default the projkey_zone line), and gives
# the reason
sub fails {
    my ($text, $reason, $name, $at) = @_;
    my ($rc, $out) = test_conf($text);

    $at //= qr/^\s*projkey_zone\s/;
    my @lines = split /\n/, $t->config;
    my ($line) = reverse grep { $lines[$_ - 1] =~ $at } 1 .. @lines;

    ok($rc != 0 && $out =~ /in \S*nginx\.conf:$line\b/ && $out =~ $reason,
        $name)
        or diag("exit code $rc, expected nginx.conf:$line and $reason, "
            . "output:\n$out");
}

###############################################################################
