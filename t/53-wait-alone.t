#!/usr/bin/perl

# projkey: a write that waits for the database waits alone.  While another
# process holds the database's write lock, one worker's admin write waits
# for it; the other worker answers GET keys at once, because the database
# is never waited for under the zone's mutex.  Once the lock is gone the
# write lands and its key works in both workers at once.  Both engines.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use IO::Socket::INET;
use IO::Select;
use IPC::Open2;
use JSON::PP;
use Time::HiRes qw(time sleep);

use Projkey::Test;
use Projkey::Admin;

###############################################################################

my $t = Projkey::Test->new()->plan(15);

$t->write_config(<<'EOF')->run();
worker_processes 2;

http {
    projkey_zone keys:4m db=%%TESTDIR%%/keys.db sync=10s;

    server {
        # reuseport: the kernel spreads connections over both workers
        listen 127.0.0.1:%%PORT_0%% reuseport;

        location = /pid {
            return 200 "$pid";
        }

        location /admin/ {
            projkey_admin         keys;
            projkey_admin_user    $http_x_user;
            projkey_admin_project $http_x_project;
        }

        location /api/ {
            projkey keys;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;

        location / {
            return 200 "backend\n";
        }
    }
}

EOF

my $api = Projkey::Admin->new($t, user => 'alice', project => 'a');
my ($key, $secret) = $api->create('before the lock');
ok($key, 'a key made before the lock');

# one kept-alive connection to each worker
my %conn;
for (1 .. 64) {
    my $c = Conn->new($t->port(0)) or next;
    my ($status, $body) = $c->call("GET /pid HTTP/1.1\r\nHost: x\r\n\r\n");
    next unless $status && $status == 200;
    $conn{$body} //= $c;
    last if keys %conn == 2;
}
is(scalar keys %conn, 2, 'a connection to each of the two workers');
my ($a, $b) = @conn{sort keys %conn};

###############################################################################

my $locker = lock_db();
ok($locker, 'another process holds the database\'s write lock');
my $t0 = time;

# worker A: a create, which waits for the lock
my $body = JSON::PP->new->encode({ name => 'during the lock' });
$a->send("POST /admin/keys HTTP/1.1\r\nHost: x\r\nX-User: alice\r\n"
    . "X-Project: a\r\nContent-Type: application/json\r\n"
    . "Content-Length: " . length($body) . "\r\n\r\n$body");

sleep 0.5;
ok(!$a->ready, 'worker A\'s create waits for the database');

# worker B: reads are not held up by A's wait
my $t1 = time;
my ($status, $list) = $b->call("GET /admin/keys HTTP/1.1\r\nHost: x\r\n"
    . "X-User: alice\r\nX-Project: a\r\n\r\n");
my $took = time - $t1;
is($status, 200, 'worker B: GET keys during the lock');
cmp_ok($took, '<', 1.5, sprintf('worker B answered in %.3f s, not after '
    . 'the lock', $took));
like($list // '', qr/before the lock/, 'worker B: the list has the key');

my ($s2) = $b->call("GET /api/x HTTP/1.1\r\nHost: x\r\n"
    . "Authorization: Bearer $secret\r\n\r\n");
is($s2, 200, 'worker B: the key is accepted during the lock');

unlock_db($locker, $t0 + 3);

my ($created, $reply) = $a->receive(10);
is($created, 201, 'worker A: the create lands once the lock is gone');
my $new = eval { JSON::PP->new->decode($reply // '') } // {};
like($new->{secret} // '', qr/^sk-project-/, 'worker A: its secret');

# in force in both workers before the answer: no sync for 10 s here
for my $c ([$a, 'A'], [$b, 'B']) {
    my ($s) = $c->[0]->call("GET /api/x HTTP/1.1\r\nHost: x\r\n"
        . "Authorization: Bearer " . ($new->{secret} // 'none')
        . "\r\n\r\n");
    is($s, 200, "worker $c->[1]: the new key is accepted at once");
}

my ($s3) = $b->call("GET /api/x HTTP/1.1\r\nHost: x\r\n"
    . "Authorization: Bearer sk-project-none\r\n\r\n");
is($s3, 401, 'worker B: a bad key is still rejected');

unlike($t->error_log, qr/was locked by/, 'no zone mutex left held');
unlike($t->error_log, qr/\[(?:alert|crit|emerg)\]/, 'no alert in the log');

$t->done();

###############################################################################

# the database's write lock, held by another process until unlock_db()
sub lock_db {
    my ($pid, $out, $in);

    if ($t->pg) {
        my $pg = $t->pg;
        $pid = open2($out, $in, @{$pg->{as}}, "$pg->{bin}/psql", '-X', '-q',
            '-A', '-t', '-h', $pg->dir, '-p', $pg->port, '-U', 'postgres',
            '-d', $pg->database) or return;
        print $in "BEGIN;\nSELECT 'locked' FROM projkey.revision "
            . "FOR UPDATE;\n";

    } else {
        $pid = open2($out, $in, 'sqlite3', $t->db) or return;
        print $in ".timeout 3000\nBEGIN EXCLUSIVE;\n"
            . "UPDATE meta SET v = v WHERE k = 'seq';\nSELECT 'locked';\n";
    }

    $in->flush();

    my $line = <$out> // '';
    return unless $line =~ /locked/;

    return { pid => $pid, in => $in, out => $out };
}

sub unlock_db {
    my ($l, $at) = @_;
    return unless $l;

    my $left = $at - time;
    sleep $left if $left > 0;

    print {$l->{in}} $t->pg ? "ROLLBACK;\n\\q\n" : "ROLLBACK;\n.quit\n";
    close $l->{in};
    waitpid($l->{pid}, 0);
}

###############################################################################

# a kept-alive HTTP/1.1 connection: one request at a time
package Conn;

sub new {
    my ($class, $port) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
        Proto => 'tcp', Timeout => 5) or return;
    binmode $s;
    $s->autoflush(1);
    return bless { s => $s, buf => '' }, $class;
}

sub send { syswrite($_[0]{s}, $_[1]) }

sub ready { IO::Select->new($_[0]{s})->can_read(0) ? 1 : 0 }

sub call {
    my ($self, $req) = @_;
    $self->send($req);
    return $self->receive(10);
}

# (status, body) of one response with a Content-Length
sub receive {
    my ($self, $timeout) = @_;
    my $sel = IO::Select->new($self->{s});
    my $deadline = Time::HiRes::time() + $timeout;

    while (Time::HiRes::time() < $deadline) {
        if ($self->{buf} =~ /^HTTP\/1\.1 (\d+).*?\r\n\r\n/s) {
            my ($status, $hlen) = ($1, $+[0]);
            my ($len) = substr($self->{buf}, 0, $hlen)
                =~ /^content-length:\s*(\d+)/mi;
            $len //= 0;
            if (length($self->{buf}) >= $hlen + $len) {
                my $body = substr($self->{buf}, $hlen, $len);
                substr($self->{buf}, 0, $hlen + $len) = '';
                return ($status, $body);
            }
        }
        last unless $sel->can_read($deadline - Time::HiRes::time());
        my $n = sysread($self->{s}, my $chunk, 65536);
        last unless $n;
        $self->{buf} .= $chunk;
    }

    return;
}
