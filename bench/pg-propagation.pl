#!/usr/bin/perl

# How long a change takes from its commit to being in force on another
# node: two nginx nodes (Debian's nginx, the module of build/) on a private
# PostgreSQL (t/lib/Projkey/Pg.pm), sync=30s so that only notifications
# count.  Each round creates a key through node A's admin API and times,
# from A's answer, until node B accepts it (polled every 0.5 ms on a kept
# connection); then disables it on B and times until A rejects it.  Also
# the time of the admin create itself (its answer comes once it is in
# force on A).
#
#   bench/pg-propagation.pl [ROUNDS]      (default 300)
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

my $rounds = shift // 300;

my $pg = Projkey::Pg->new();
my $uri = $pg->uri;

my $na = Projkey::Test->new();
my $nb = Projkey::Test->new();

my ($rc, $out, $err) = $na->cli({ db => $uri }, 'init');
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

for ([$na, "a"], [$nb, "b"]) {
    my ($n, $name) = @$_;
    (my $c = $conf) =~ s/%%URI%%/$uri/;
    $c =~ s/%%NODE%%/$name/;
    $n->write_config($c)->run();
}

my $api_1 = Projkey::Admin->new($na);
my $api_2 = Projkey::Admin->new($nb);

my $conn_a = connect_to($na);
my $conn_b = connect_to($nb);

my (@create, @to_b, @to_a);

for my $i (1 .. $rounds) {
    my $t0 = time;
    my $r = $api_1->call('POST', 'keys', { name => "k$i" });
    my $t1 = time;
    die "create: $r->{status} $r->{body}" unless $r->{status} == 201;
    push @create, $t1 - $t0;

    my $key = $r->{json}{secret};
    push @to_b, until_status($conn_b, $key, 200) - $t1;

    $r = $api_2->call('PATCH', "keys/$r->{json}{key}{id}",
        { status => 'disabled' });
    my $t2 = time;
    die "disable: $r->{status} $r->{body}" unless $r->{status} == 200;
    push @to_a, until_status($conn_a, $key, 401) - $t2;
}

printf "%d rounds, two nodes of 2 workers, one PostgreSQL %s, loopback\n",
    $rounds, $pg->{bin} =~ m{/(\d+)/bin} ? $1 : '';
printf "%-34s %8s %8s %8s %8s\n", '', 'p50', 'p90', 'p99', 'max';
line('admin create on A (answer)', \@create);
line('A\'s create in force on B', \@to_b);
line('B\'s disable in force on A', \@to_a);

$_->stop() for $na, $nb;

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

# the time at which the node answers the key with that status
sub until_status {
    my ($s, $key, $want) = @_;
    my $deadline = time + 10;

    while (time < $deadline) {
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
        return time if $status == $want;
        sleep 0.0005;
    }

    die "status $want not reached in 10 s\n";
}
