#!/usr/bin/perl

# projkey: a full resync (the database file replaced by another database)
# that finds the zone too small loads what fits, says at crit how many keys
# are rejected, and tries again at each sync: once room is made, every key
# of the database is in, without a reload.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;

use Projkey::Test;

###############################################################################

my $t = Projkey::Test->new()->plan(8);

$t->expect_errors(qr/\[crit\] .*projkey_zone "keys" is full: \d+ of the \d+ keys of database ".*keys\.db" are not loaded and are rejected; make the zone larger$/);

my $d = $t->testdir;
my ($aid, $akey) = $t->create_key('in the first file');

$t->write_config(<<'EOF')->run();
http {
    projkey_zone keys:32k db=%%TESTDIR%%/keys.db sync=200ms;

    server {
        listen 127.0.0.1:%%PORT_0%%;

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

like(call($akey), qr/^HTTP\/1\.1 204 /, 'a key of the first file works');

# another database, larger than the zone, put in place of the first

my $other = "$d/other.db";
my ($bid, $bkey) = $t->create_key('b', db => $other);
my ($rc) = $t->cli({ db => $other }, 'create', 'bulk', '--count', '1000',
    '--secrets', "$d/bulk.secrets");
die "projkey create --count failed\n" if $rc;
my @bulk = split /\n/, $t->read_file('bulk.secrets');

$t->run_cmd('sqlite3', $other, 'PRAGMA wal_checkpoint(TRUNCATE);');
rename $other, $t->db or die "rename: $!\n";
unlink map { $t->db . $_ } '-wal', '-shm';

ok($t->wait_for(5, sub { $t->error_log =~ /of the 1001 keys .* are not loaded/ }),
    'the resync says at crit how many keys are rejected');
my ($missing) = $t->error_log =~ /is full: (\d+) of the 1001 keys/;
ok($missing && $missing < 1001, "some keys are in, $missing are not");
like(call($akey), qr/^HTTP\/1\.1 401 /, 'the first file\'s key is rejected');

my $in = grep { call($_) =~ /^HTTP\/1\.1 204 / } $bkey, @bulk;
is($in, 1001 - $missing, 'the keys that fit work, the others are rejected');

# room made by hand: all but the last 100 bulk keys (not loaded) deleted

($rc) = $t->run_cmd('sqlite3', $t->db, "DELETE FROM keys WHERE name LIKE 'bulk-%' "
    . "AND rowid NOT IN (SELECT rowid FROM keys WHERE name LIKE 'bulk-%' "
    . "ORDER BY rowid DESC LIMIT 100);");
is($rc, 0, 'sqlite3: 900 keys deleted');

ok($t->wait_for(10, sub {
    (grep { call($_) =~ /^HTTP\/1\.1 204 / } $bkey, @bulk[900 .. 999]) == 101
}), 'tried again: every remaining key of the database is in');
like($t->error_log, qr/every key of database ".*keys\.db" is loaded again/,
    'the log says so');

###############################################################################

$t->done();

###############################################################################

sub call {
    my ($k) = @_;
    return $t->get('/api/', Authorization => "Bearer $k");
}

###############################################################################
