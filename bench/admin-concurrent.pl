#!/usr/bin/perl

# Admin writes of several clients at once, on one nginx of 2 workers
# (listen reuseport: the clients' connections spread over both): each
# client creates keys, then disables them, one call at a time on a kept
# connection.  Prints the calls per second and p50, p99 and max of each
# call, in milliseconds.  With PROJKEY_TEST_ENGINE=pg the keys are in a
# private PostgreSQL (t/lib/Projkey/Pg.pm); PROJKEY_TEST_MODULE picks the
# module, as in the tests, so that two builds compare in one run.
#
#   bench/admin-concurrent.pl [CLIENTS [CALLS]]     (default 4, 500)

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../t/lib";

use IO::Socket::INET;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(time);

use Projkey::Test;

my $clients = shift // 4;
my $calls = shift // 500;

my $t = Projkey::Test->new();

$t->write_config(<<'EOF')->run();
worker_processes 2;

http {
    projkey_zone keys:64m db=%%TESTDIR%%/keys.db;

    server {
        listen 127.0.0.1:%%PORT_0%% reuseport;
        keepalive_requests 1000000;

        location /admin/ {
            projkey_admin         keys;
            projkey_admin_user    bench;
        }
    }
}
EOF

my $dir = $t->testdir;
my $t0 = time;
my @pids;

for my $c (1 .. $clients) {
    my $pid = fork // die "fork: $!\n";
    if ($pid == 0) {
        client($c);
        POSIX::_exit(0);
    }
    push @pids, $pid;
}

waitpid($_, 0) for @pids;
my $wall = time - $t0;

my (%v, $errors);
for my $c (1 .. $clients) {
    open my $fh, '<', "$dir/client$c" or die "client $c: $!\n";
    while (<$fh>) {
        my ($op, $dt) = split;
        if ($op eq 'error') { $errors++; next }
        push @{$v{$op}}, $dt;
    }
}

my $n = 0;
$n += @$_ for values %v;

printf "%d clients x %d keys (create, then disable), one nginx of 2 "
    . "workers, %s\n", $clients, $calls, $t->pg ? 'PostgreSQL' : 'SQLite';
printf "%.0f calls/s, %d errors\n", $n / $wall, $errors // 0;
printf "%-10s %8s %8s %8s\n", '', 'p50', 'p99', 'max';
for my $op (qw(create disable)) {
    my @s = sort { $a <=> $b } @{$v{$op} // [0]};
    my $q = sub { $s[int($#s * $_[0] + 0.5)] * 1000 };
    printf "%-10s %8.2f %8.2f %8.2f  ms\n", $op, $q->(0.5), $q->(0.99),
        $s[-1] * 1000;
}

$t->stop();

sub client {
    my ($c) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $t->port(0),
        Proto => 'tcp') // die "connect: $!\n";
    open my $out, '>', "$dir/client$c" or die "$!\n";
    my @ids;

    for my $i (1 .. $calls) {
        my ($st, $body, $dt) = call($s, 'POST', '/admin/keys',
            qq({"name":"c$c-$i"}));
        if ($st != 201) { print $out "error\n"; next }
        print $out "create $dt\n";
        push @ids, $body =~ /"id":"([^"]+)"/;
    }

    for my $id (@ids) {
        my ($st, undef, $dt) = call($s, 'PATCH', "/admin/keys/$id",
            '{"status":"disabled"}');
        print $out $st == 200 ? "disable $dt\n" : "error\n";
    }

    close $out;
}

sub call {
    my ($s, $method, $uri, $body) = @_;
    my $t0 = time;
    print $s "$method $uri HTTP/1.1\r\nHost: x\r\n"
        . "Content-Type: application/json\r\n"
        . "Content-Length: " . length($body) . "\r\n\r\n$body";
    my $head = '';
    while ($head !~ /\r\n\r\n$/) {
        sysread($s, my $ch, 1) or die "read: $!\n";
        $head .= $ch;
    }
    my ($st) = $head =~ /^HTTP\/1\.1 (\d+)/;
    my ($len) = $head =~ /^content-length:\s*(\d+)/mi;
    my $data = '';
    while (length($data) < ($len // 0)) {
        sysread($s, $data, $len - length($data), length($data))
            or die "read: $!\n";
    }
    return ($st, $data, time - $t0);
}
