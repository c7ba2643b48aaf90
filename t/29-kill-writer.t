#!/usr/bin/perl

# projkey: every zone write is safe for a kill at any instruction.  A
# worker is stopped by gdb inside the zone's delete (an admin DELETE), its
# thread is stepped N instructions, and the worker is killed there, for N
# from the first instruction past the end of the write.  After each kill
# every key still in the database is accepted at once (a dead node left
# in a chain would hide the keys behind it), and the deleted key is
# rejected within the sync interval, as the database says.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(sleep time);

use Projkey::Test;

###############################################################################

my $STEPS = 40;

my $t = Projkey::Test->new()->plan(2 * $STEPS + 1);

# the kills are the point
$t->expect_errors(qr/\[alert\] .*worker process \d+ exited on signal 9/,
    qr/\[alert\] .*shared memory zone "keys" was locked by \d+/);

-x '/usr/bin/gdb' or die "gdb is missing: run scripts/deps\n";

my $d = $t->testdir;
my ($rc) = $t->cli('create', 'bulk', '--count', '400',
    '--secrets', "$d/bulk.secrets");
die "projkey create --count failed\n" if $rc;

my @secret = split /\n/, $t->read_file('bulk.secrets');
my %id = map { $_->{name} => $_->{id} } @{$t->cli_json('list', '--limit', '1000')->{keys}};

# 64k: 512 buckets, indexed by the first 8 bytes of the key's BLAKE2b-256
my @bucket = buckets(511, @secret);

# in a bucket, the key loaded last heads the chain: delete heads of chains
# with keys behind them
my (%chain, @victims);
push @{$chain{$bucket[$_]}}, $_ for 0 .. $#secret;
@victims = map { $_->[-1] } grep { @$_ >= 2 } values %chain;
die "only " . @victims . " chains of two keys or more\n" if @victims < $STEPS;

$t->write_config(<<'EOF')->run();
worker_processes 1;

http {
    projkey_zone keys:64k db=%%TESTDIR%%/keys.db sync=500ms;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /admin/ {
            projkey_admin      keys;
            projkey_admin_user admin;
        }

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

is(wrong(), '', 'every key answers as the database says');

my %gone;

for my $n (0 .. $STEPS - 1) {
    my $v = $victims[$n];
    kill_in_delete($id{"bulk-" . ($v + 1)}, $n);
    $gone{$v} = 1;

    # the keys behind the one deleted, and every other one: at once
    is(wrong($v), '', "killed $n instructions into a delete: every other "
        . "key right at once");

    ok($t->wait_for(4, sub { call($secret[$v]) =~ /^HTTP\/1\.1 401 / }),
        "killed $n instructions into a delete: the deleted key is rejected");
}

###############################################################################

$t->done();

###############################################################################

sub call {
    my ($k) = @_;
    return $t->get('/api/', Authorization => "Bearer $k");
}

# the keys that do not answer as the database says, but the one in flux
sub wrong {
    my ($skip) = @_;
    my @bad;

    for my $i (0 .. $#secret) {
        next if defined $skip && $i == $skip;
        my $want = $gone{$i} ? 401 : 204;
        my ($st) = call($secret[$i]) =~ /^HTTP\/1\.1 (\d+)/;
        push @bad, "bulk-" . ($i + 1) . ": " . ($st // 'none') . ", not $want"
            if ($st // 0) != $want;
    }

    return join "\n", @bad;
}

# an admin DELETE of id, its worker stopped by gdb in the zone's delete,
# stepped n instructions there and killed; returns once a new worker runs
sub kill_in_delete {
    my ($id, $n) = @_;

    my ($pid) = $t->worker_pids;
    my $cmds = "$d/gdb.cmds";
    my $out = "$d/gdb.out";

    $t->write_file('gdb.cmds', join "\n", 'set pagination off',
        'set confirm off', 'handle all nostop noprint pass',
        'break ngx_http_projkey_zone_remove_locked', 'echo READY\n',
        'continue', ($n ? "stepi $n" : ()), 'kill', 'quit', '');
    unlink $out;

    my $gdb = fork // die "fork: $!\n";
    if ($gdb == 0) {
        open STDOUT, '>', $out or die;
        open STDERR, '>&', \*STDOUT or die;
        exec 'gdb', '-q', '-nx', '-batch', '-p', $pid, '-x', $cmds;
        die "exec gdb: $!\n";
    }

    $t->wait_for(20, sub { $t->read_file('gdb.out') =~ /READY/ })
        or die "gdb did not attach:\n" . $t->read_file('gdb.out');
    if ($t->read_file('gdb.out') =~ /not defined/) {
        kill 'KILL', $gdb;
        die "gdb cannot stop in the zone's delete: a module without its "
            . "debug symbols (install the -dbgsym package)?\n"
            . $t->read_file('gdb.out');
    }
    sleep 0.2;

    # the answer never comes: the worker is killed before it
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $t->port(0)) or die "connect: $!\n";
    print $s "DELETE /admin/keys/$id HTTP/1.1\r\nHost: localhost\r\n"
        . "Connection: close\r\n\r\n";

    my $deadline = time + 30;
    while (waitpid($gdb, POSIX::WNOHANG()) == 0) {
        die "gdb did not finish:\n" . $t->read_file('gdb.out')
            if time > $deadline;
        sleep 0.05;
    }
    close $s;

    $t->wait_for(10, sub { my ($w) = $t->worker_pids; $w && $w != $pid })
        or die "no new worker after the kill\n";

    # a kill between the zone's delete and the note of its revision leaves
    # the delete to the new worker's first sync: gdb must not stop in that
    # one, but in the next DELETE's
    sleep 0.8;
}

# the zone's bucket of each secret
sub buckets {
    my ($mask, @keys) = @_;
    my $py = 'import sys, hashlib; [print(int.from_bytes(hashlib.blake2b('
        . 'l.strip().encode(), digest_size=32).digest()[:8], "little") & '
        . "$mask) for l in sys.stdin]";
    open my $fh, '-|', 'sh', '-c', "printf '%s\\n' @keys | python3 -c '$py'"
        or die "python3: $!\n";
    my @b = map { chomp; $_ } <$fh>;
    close $fh;
    die "python3 failed\n" unless @b == @keys;
    return @b;
}

###############################################################################
