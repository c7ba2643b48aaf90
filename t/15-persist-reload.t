#!/usr/bin/perl

# projkey: keys survive restarts and reloads, reloads under traffic lose no
# request, and a resized zone is loaded again.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use POSIX ();
use Test::More;
use Time::HiRes qw(sleep time);

use Projkey::Test;

###############################################################################

my $t = Projkey::Test->new()->plan(21);

my ($id1, $key1) = $t->create_key('first');
my ($did, $dkey) = $t->create_key('disabled');
die "projkey disable failed\n" if ($t->cli('disable', $did))[0];

my $conf = <<'EOF';
worker_processes 2;

http {
    projkey_zone keys:%%SIZE%% db=%%TESTDIR%%/keys.db sync=200ms;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /api/ {
            projkey keys;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
            proxy_set_header X-Projkey-Key-Name $projkey_key_name;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;

        location / {
            return 200 "name=$http_x_projkey_key_name status=ok\n";
        }
    }
}

EOF

(my $conf4 = $conf) =~ s/%%SIZE%%/4m/;
(my $conf8 = $conf) =~ s/%%SIZE%%/8m/;

$t->write_config($conf4)->run();

###############################################################################

like(call($key1), qr/ 200 .*name=first /s, 'key accepted');
like(call($dkey), qr/ 401 /, 'disabled key rejected');

my ($id2, $key2) = $t->create_key('second');
ok($t->wait_for(3, sub { call($key2) =~ / 200 / }), 'key made while running');

# restart

$t->restart();

like(call($key1), qr/ 200 .*name=first /s, 'restart: first key');
like(call($key2), qr/ 200 .*name=second /s, 'restart: key made while running');
like(call($dkey), qr/ 401 .*api_key_disabled/s, 'restart: still disabled');

# reloads under traffic

my $result = $t->testdir . '/traffic';
my $pid = fork() // die "fork: $!\n";

if ($pid == 0) {
    my ($n, $fail, $last) = (0, 0, '');
    my $stop = time + 30;
    while (time < $stop && !-e "$result.stop") {
        my $r = call($n % 2 ? $key1 : $key2);
        $n++;
        next if $r =~ /^HTTP\/1\.1 200 .*status=ok/s;
        $fail++;
        ($last) = $r =~ /^(.*)$/m;
        $last //= 'no response';
    }
    open my $fh, '>', $result or POSIX::_exit(1);
    print $fh "$n $fail $last\n";
    close $fh;
    POSIX::_exit(0);
}

sleep 0.3;
my @reloaded;
for (1 .. 3) {
    my @old = $t->worker_pids;
    $t->reload();
    my %old = map { $_ => 1 } @old;
    push @reloaded, !grep { $old{$_} } $t->worker_pids;
    sleep 0.3;
}

$t->write_file("$result.stop", '');
waitpid($pid, 0);

my ($n, $fail, $last) = split / /, $t->read_file($result), 3;
$last //= '';
chomp $last;

is(scalar(grep { $_ } @reloaded), 3, 'three reloads with new workers');
cmp_ok($n // 0, '>', 50, 'requests during reloads') or diag("sent $n");
is($fail, 0, 'no failure during reloads') or diag("last failure: $last");

like(call($key1), qr/ 200 .*name=first /s, 'reload: first key');
like(call($dkey), qr/ 401 /, 'reload: still disabled');

# a key made between reloads is kept by a reused zone

my ($id3, $key3) = $t->create_key('third');
ok($t->wait_for(3, sub { call($key3) =~ / 200 / }), 'third key usable');
$t->reload();
like(call($key3), qr/ 200 .*name=third /s, 'reload: third key kept');

# a resized zone is fresh and loaded again from the database

$t->write_config($conf8)->reload();

like(call($key1), qr/ 200 .*name=first /s, 'resized: first key');
like(call($key2), qr/ 200 .*name=second /s, 'resized: second key');
like(call($key3), qr/ 200 .*name=third /s, 'resized: third key');
like(call($dkey), qr/ 401 .*api_key_disabled/s, 'resized: still disabled');

# a backup restored with nginx stopped, as docs/deployment.md says: the
# database's state comes back, and nothing of the zone's

system('sqlite3', $t->db, '.backup ' . $t->testdir . '/backup.db') == 0
    or die "sqlite3 .backup failed\n";

my ($id4, $key4) = $t->create_key('after backup');
$t->cli('delete', $id1);
ok($t->wait_for(3, sub { call($key1) =~ /^HTTP\/1\.1 401 / }),
    'before restore: first key deleted');

$t->stop();
unlink map { $t->db . $_ } '', '-wal', '-shm';
system('sqlite3', $t->testdir . '/backup.db', '.backup ' . $t->db) == 0
    or die "sqlite3 restore failed\n";
$t->run();

like(call($key4), qr/^HTTP\/1\.1 401 /, 'restored: newer key gone');
like(call($key1), qr/ 200 .*name=first /s, 'restored: deleted key back');
like(call($dkey), qr/ 401 .*api_key_disabled/s, 'restored: still disabled');

###############################################################################

$t->done();

###############################################################################

sub call {
    my ($k) = @_;
    return $t->get('/api/', Authorization => "Bearer $k");
}

###############################################################################
