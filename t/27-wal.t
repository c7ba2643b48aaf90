#!/usr/bin/perl

# projkey: the WAL does not grow without end under admin writes that never
# pause.  SQLite starts the WAL over only after a checkpoint has copied all
# of it; worker 0's checkpoint after each batch (flush=) ends with a second
# pass under the zone's lock.  Each start-over changes the salt in the WAL
# header, and the file is cut back to 4 MB
# (journal_size_limit).  Nothing written is lost on the way.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);

use Projkey::Test;
use Projkey::Admin;

###############################################################################

my $t = Projkey::Test->new()->plan(7);

$t->write_config(<<'EOF')->run();
http {
    projkey_zone keys:4m db=%%TESTDIR%%/keys.db sync=1s flush=1s;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /admin/ {
            projkey_admin         keys;
            projkey_admin_user    wal;
        }
    }
}

EOF

###############################################################################

my $d = $t->testdir;
my $api = Projkey::Admin->new($t, user => 'wal', project => undef);

my @ids;
for my $i (1 .. 20) {
    my ($k) = $api->create("w$i");
    push @ids, $k->{id} if $k;
}
is(scalar @ids, 20, '20 keys to rename');

# salt-1 of the WAL header (bytes 16-19): SQLite changes it each time
# it starts the WAL over (the checkpoint sequence number before it is
# counted per connection, so it can repeat)
sub wal_seq {
    open my $fh, '<:raw', "$d/keys.db-wal" or return undef;
    my $n = read $fh, my $h, 32;
    return undef unless defined $n && $n == 32;
    return (unpack 'N8', $h)[4];
}

my $seconds = 8;
my $seq0 = wal_seq();
ok(defined $seq0, 'the WAL file has a header');

# two writers renaming keys as fast as nginx answers, for $seconds
my @kids;
for my $w (0 .. 1) {
    my $pid = fork() // die "fork: $!";
    if ($pid == 0) {
        my $a = Projkey::Admin->new($t, user => 'wal', project => undef);
        my ($n, $bad) = (0, 0);
        my $end = time + $seconds;
        while (time < $end) {
            my $id = $ids[($n * 2 + $w) % @ids];
            my $r = $a->call('PATCH', "keys/$id", { name => "w$w-$n" });
            $bad++ if $r->{status} != 200;
            $n++;
        }
        POSIX::_exit($bad ? 1 : 0);
    }
    push @kids, $pid;
}

my ($restarts, $last, $max_size) = (0, $seq0, 0);
my $end = time + $seconds;
while (time < $end) {
    my $s = wal_seq();
    $restarts++ if defined $s && defined $last && $s != $last;
    $last = $s if defined $s;
    my $size = -s "$d/keys.db-wal" // 0;
    $max_size = $size if $size > $max_size;
    sleep 0.05;
}

my $failed = 0;
for my $p (@kids) {
    waitpid($p, 0);
    $failed++ if $? != 0;
}
is($failed, 0, 'every rename under load answered 200');

# about one checkpoint a second: most must have started the WAL over
cmp_ok($restarts, '>=', 3,
    "the WAL was started over during $seconds s of writes ($restarts times)");

# once the writes stop, a checkpoint (flush=1s) and then one write start
# the WAL over and cut it back to the limit
sleep 2.5;
my $r = $api->call('PATCH', "keys/$ids[0]", { name => 'w0-last' });
my $size = -s "$d/keys.db-wal" // 0;
cmp_ok($size, '<=', 4 * 1048576 + 64 * 1024,
    "the WAL file is cut back to 4 MB after a checkpoint ($size bytes; "
    . "$max_size at most under the writes)");

# what was written is there: every key carries one of the writers' names
my $list = $api->list();
my @renamed = grep { $_->{name} =~ /^w[01]-(?:\d+|last)$/ } @$list;
is(scalar @renamed, 20, 'every key carries a name from the writers');

$t->stop();

my $elog = $t->read_file('error.log');
unlike($elog, qr/\[(alert|crit|emerg)\]|checkpoint of database/,
    'no alert, no failed checkpoint');

###############################################################################
