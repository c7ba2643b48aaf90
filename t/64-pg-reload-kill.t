#!/usr/bin/perl

# projkey: a PostgreSQL node across a reload and a killed worker 0.  The
# follower is worker 0's: after a reload the new worker 0 follows (a key
# made by the CLI reaches the node within 1 s though sync= is 30 s), and
# after a kill -9 of worker 0 the worker nginx starts in its place does;
# the zone keeps every key meanwhile, and no connection is left behind.
# Reloads during a stream of changes lose none of them.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use POSIX ();
use Test::More;
use Time::HiRes qw(sleep time);

use Projkey::Test;
use Projkey::Pg;

###############################################################################

my $t = Projkey::Test->new()->plan(13);

# the killed worker is the master's to report
$t->expect_errors(qr/exited on signal 9/);

my $pg = Projkey::Pg->new();
my $uri = $pg->uri;

my ($rc) = $t->cli({ db => $uri }, 'init');
die "projkey init failed\n" if $rc;

my (undef, $k0) = $t->create_key('before', db => $uri);

$t->write_config(<<"EOF")->run();
worker_processes 2;

http {
    projkey_zone keys:4m db=$uri sync=30s node=r;

    server {
        listen 127.0.0.1:%%PORT_0%%;

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

like(api($k0), qr/ 200 .*ok before/s, 'a key of the start');
ok(arrives('one'), 'a CLI key arrives by notification');

# a reload: the new worker 0 follows, the zone keeps its keys

$t->reload();

like(api($k0), qr/ 200 .*ok before/s, 'after a reload: the key of the start');
ok(arrives('after reload'), 'the new worker 0 follows');

# reloads while the CLI writes: every key of the stream arrives

my $stream = $t->testdir . '/stream.txt';
my $writer = fork() // die "fork: $!\n";

if ($writer == 0) {
    open my $fh, '>', $stream or POSIX::_exit(1);
    $fh->autoflush(1);
    for my $i (1 .. 40) {
        my (undef, $key) = eval { $t->create_key("stream $i", db => $uri) };
        printf $fh "%d %s %.3f\n", $i, $key, time if $key;
        sleep 0.03;
    }
    close $fh;
    POSIX::_exit(0);
}

# the reloads start once the stream has
$t->wait_for(10, sub { -s $stream });
my $first = time;

for (1 .. 3) {
    $t->reload();
    sleep 0.3;
}

my $last = time;

waitpid($writer, 0);
my @stream = map { [ split ' ' ] } split /\n/, $t->read_file('stream.txt');
is(scalar @stream, 40, 'the stream made its 40 keys');
cmp_ok(scalar(grep { $_->[2] > $first && $_->[2] < $last } @stream), '>', 5,
    'many of them while nginx reloaded');

my $all = $t->wait_for(3, sub {
    !grep { api($_->[1]) !~ / 200 .*ok stream $_->[0]\b/s } @stream;
});
ok($all, 'and every one of them is in force after the reloads');

# worker 0 killed: the one nginx starts in its place follows

my $w0 = worker0();
ok($w0, 'worker 0 found (it holds the LISTEN connection)');
kill 'KILL', $w0;

ok($t->wait_for(10, sub { my $w = worker0(); $w && $w != $w0 }),
    'a new worker 0 listens');
like(api($k0), qr/ 200 .*ok before/s, 'after the kill: the key of the start');
ok(arrives('after kill'), 'and changes arrive');

# one LISTEN connection: the killed worker's went with it

ok($t->wait_for(5, sub { listeners() == 1 }), 'one listening session')
    or diag(listeners());

$t->stop();

ok($t->wait_for(5, sub { sessions() == 0 }),
    'nginx stopped: no session left on the server');

###############################################################################

sub api {
    my ($key) = @_;
    return $t->http("GET /api/ HTTP/1.0\r\nHost: localhost\r\n"
        . "Authorization: Bearer $key\r\n\r\n");
}

# a key made by the CLI is accepted within 1 s
sub arrives {
    my ($name) = @_;
    my (undef, $key) = $t->create_key($name, db => $uri);
    my $start = time;

    while (time - $start < 1) {
        return 1 if api($key) =~ / 200 .*ok \Q$name\E/s;
        sleep 0.01;
    }

    return 0;
}

sub listeners {
    my $n = $pg->psql("SELECT count(*) FROM pg_stat_activity"
        . " WHERE datname = 'projkey' AND query = 'LISTEN projkey'"
        . " AND state = 'idle'", db => 'projkey');
    chomp $n;
    return $n;
}

sub sessions {
    my $n = $pg->psql("SELECT count(*) FROM pg_stat_activity"
        . " WHERE datname = 'projkey' AND usename = 'projkey'",
        db => 'projkey');
    chomp $n;
    return $n;
}

# the worker whose session LISTENs: its pid is the client's port's owner
sub worker0 {
    my ($port) = $pg->psql("SELECT client_port FROM pg_stat_activity"
        . " WHERE datname = 'projkey' AND query = 'LISTEN projkey'",
        db => 'projkey') =~ /(\d+)/;
    return undef unless $port;

    for my $pid ($t->worker_pids) {
        my $fds = qx{ls -l /proc/$pid/fd 2>/dev/null};
        for my $ino ($fds =~ /socket:\[(\d+)\]/g) {
            open my $fh, '<', '/proc/net/tcp' or next;
            while (<$fh>) {
                my @f = split;
                next unless @f > 9 && $f[9] eq $ino;
                my ($lport) = $f[1] =~ /:([0-9A-F]+)$/;
                return $pid if hex($lport) == $port;
            }
        }
    }

    return undef;
}

###############################################################################
