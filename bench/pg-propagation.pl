#!/usr/bin/perl

# How long a change takes from its commit to being in force on the other
# nodes: three nginx nodes (Debian's nginx, the module of build/) on a
# private PostgreSQL (t/lib/Projkey/Pg.pm), sync=30s so that only
# notifications count.  Each round creates a key through node A's admin
# API and waits until B and C accept it; then disables it through A and
# times, from A's answer, until B and C each reject it (polled every
# 0.5 ms on kept connections).  Also the time of the admin create and
# disable themselves (an answer comes once the change is in force on A).
#
#   bench/pg-propagation.pl [ROUNDS]      (default 1000)
#
# Prints p50, p90, p99 and max of each, in milliseconds.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../t/lib";

use IO::Socket::INET;
use Time::HiRes qw(sleep time);

use Projkey::Test;
use Projkey::Admin;
use Projkey::Pg;

my $rounds = shift // 1000;

my $pg = Projkey::Pg->new();
my $uri = $pg->uri;

my @n = map { Projkey::Test->new() } 1 .. 3;

my ($rc, $out, $err) = $n[0]->cli({ db => $uri }, 'init');
die "projkey init: $err" if $rc;

my $conf = <<'EOF';
worker_processes 2;

http {
    projkey_zone keys:16m db=%%URI%% sync=30s node=%%NODE%%;

    server {
        listen 127.0.0.1:%%PORT_0%%;
        keepalive_requests 1000000;

        location /admin/ {
            projkey_admin         keys;
            projkey_admin_user    bench;
        }

        location /api/ {
            projkey keys;
            empty_gif;
        }
    }
}
EOF

for my $i (0 .. 2) {
    (my $c = $conf) =~ s/%%URI%%/$uri/;
    $c =~ s/%%NODE%%/node$i/;
    $n[$i]->write_config($c)->run();
}

my $api = Projkey::Admin->new($n[0]);
my @conn = map { connect_to($_) } @n;

my (@create, @disable, @to_b, @to_c);

for my $i (1 .. $rounds) {
    my $t0 = time;
    my $r = $api->call('POST', 'keys', { name => "k$i" });
    my $t1 = time;
    die "create: $r->{status} $r->{body}" unless $r->{status} == 201;
    push @create, $t1 - $t0;

    my $key = $r->{json}{secret};
    until_status($conn[$_], $key, 200) for 1, 2;

    $t0 = time;
    $r = $api->call('PATCH', "keys/$r->{json}{key}{id}",
        { status => 'disabled' });
    $t1 = time;
    die "disable: $r->{status} $r->{body}" unless $r->{status} == 200;
    push @disable, $t1 - $t0;

    # whichever comes first is timed first; the other from the same answer
    my %at = until_both($key, 401);
    push @to_b, $at{1} - $t1;
    push @to_c, $at{2} - $t1;
}

printf "%d rounds, three nodes of 2 workers, one PostgreSQL %s, "
    . "loopback\n", $rounds, $pg->{bin} =~ m{/(\d+)/bin} ? $1 : '';
printf "%-34s %8s %8s %8s %8s\n", '', 'p50', 'p90', 'p99', 'max';
line('admin create on A (answer)', \@create);
line('admin disable on A (answer)', \@disable);
line('A\'s disable: first 401 on B', \@to_b);
line('A\'s disable: first 401 on C', \@to_c);

$_->stop() for @n;

sub line {
    my ($what, $v) = @_;
    my @s = sort { $a <=> $b } @$v;
    my $q = sub { $s[int(($#s) * $_[0] + 0.5)] * 1000 };
    printf "%-34s %8.2f %8.2f %8.2f %8.2f  ms\n", $what, $q->(0.5),
        $q->(0.9), $q->(0.99), $s[-1] * 1000;
}

sub connect_to {
    my ($n) = @_;
    return IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $n->port(0),
        Proto => 'tcp') // die "connect: $!\n";
}

# the times at which B and C first answer the key with that status
sub until_both {
    my ($key, $want) = @_;
    my %at;
    my $deadline = time + 10;

    while (keys %at < 2) {
        die "status $want not reached in 10 s\n" if time > $deadline;
        for my $i (1, 2) {
            next if $at{$i};
            $at{$i} = time if ask($conn[$i], $key) == $want;
        }
        sleep 0.0005 if keys %at < 2;
    }

    return %at;
}

# the time at which the node answers the key with that status
sub until_status {
    my ($s, $key, $want) = @_;
    my $deadline = time + 10;

    while (time < $deadline) {
        return time if ask($s, $key) == $want;
        sleep 0.0005;
    }

    die "status $want not reached in 10 s\n";
}

# one request on a kept connection: its status
sub ask {
    my ($s, $key) = @_;

    print $s "GET /api/ HTTP/1.1\r\nHost: b\r\n"
        . "Authorization: Bearer $key\r\n\r\n";
    my $head = '';
    while ($head !~ /\r\n\r\n/) {
        sysread($s, $head, 4096, length $head) or die "read: $!\n";
    }
    my ($status) = $head =~ m{^HTTP/1\.1 (\d+)};
    my ($len) = $head =~ /Content-Length: (\d+)/i;
    my ($body) = $head =~ /\r\n\r\n(.*)/s;
    my $rest = ($len // 0) - length $body;
    while ($rest > 0) {
        my $n = sysread($s, my $buf, $rest) or die "read: $!\n";
        $rest -= $n;
    }

    return $status;
}
