package Projkey::Backend;

# Small real backends for the tests, one process each, that answer every
# request with what they received, in order and with repeats:
#
#   my $pid = Projkey::Backend->start(fastcgi => $t->port(3));
#
# Protocols: http (the request's header lines), fastcgi, uwsgi and scgi
# (the request's parameters whose names start with HTTP_).  The body is
# one "name: value" line each.  A parameter or header ECHO_STATUS (e.g.
# "fastcgi_param ECHO_STATUS 404;", or "X-Echo-Status: 404" for http) sets
# the response status, so that intercepted errors and error_page can be
# tried.  The servers are stopped when the test ends.

use strict;
use warnings;

use Errno qw(EINTR);
use IO::Socket::INET;
use POSIX ();

my @pids;

sub start {
    my ($class, $proto, $port) = @_;

    my $serve = $class->can("serve_$proto") or die "no backend $proto\n";

    my $l = IO::Socket::INET->new(
        LocalAddr => '127.0.0.1',
        LocalPort => $port,
        Proto     => 'tcp',
        Listen    => 64,
        ReuseAddr => 1,
    ) or die "backend $proto cannot listen on 127.0.0.1:$port: $!\n";

    my $pid = fork() // die "fork: $!\n";

    if ($pid == 0) {
        $SIG{PIPE} = 'IGNORE';
        while (1) {
            my $c = $l->accept() or do { next if $! == EINTR; last };
            binmode $c;
            eval { $serve->($c); 1 } or print STDERR "backend $proto: $@";
            close $c;
        }
        POSIX::_exit(0);
    }

    close $l;
    push @pids, $pid;

    return $pid;
}

sub stop_all {
    kill 'TERM', @pids;
    waitpid($_, 0) for @pids;
    @pids = ();
}

END {
    local $?;
    stop_all();
}

# exactly $n bytes, or dies
sub read_n {
    my ($c, $n) = @_;
    my $buf = '';

    while (length $buf < $n) {
        my $r = sysread($c, $buf, $n - length $buf, length $buf);
        next if !defined $r && $! == EINTR;
        die "short read\n" unless $r;
    }

    return $buf;
}

sub write_all {
    my ($c, $data) = @_;

    while (length $data) {
        my $w = syswrite($c, $data);
        next if !defined $w && $! == EINTR;
        die "write: $!\n" unless $w;
        substr($data, 0, $w, '');
    }
}

# the body and the status for a list of [name, value]
sub answer {
    my (@pairs) = @_;
    my $status = 200;
    my $body = '';

    for (@pairs) {
        my ($k, $v) = @$_;
        $status = $v if $k =~ /^(?:ECHO_STATUS|HTTP_X_ECHO_STATUS|X-Echo-Status)$/i;
        $body .= "$k: $v\n";
    }

    return ($status, $body);
}

sub cgi_answer {
    my (@pairs) = @_;
    my ($status, $body) = answer(grep { $_->[0] =~ /^(?:HTTP_|ECHO_)/ } @pairs);
    return "Status: $status Echo\r\nContent-Type: text/plain\r\n"
        . "Content-Length: " . length($body) . "\r\n\r\n" . $body;
}


sub serve_http {
    my ($c) = @_;
    my $head = '';

    while ($head !~ /\r\n\r\n/) {
        my $r = sysread($c, $head, 4096, length $head);
        next if !defined $r && $! == EINTR;
        die "no request head\n" unless $r;
    }

    ($head) = split /\r\n\r\n/, $head, 2;
    my @lines = split /\r\n/, $head;
    shift @lines;

    my ($status, $body) = answer(map { /^([^:]*):[ \t]*(.*)$/ ? [$1, $2] : () }
        @lines);

    write_all($c, "HTTP/1.1 $status Echo\r\nContent-Type: text/plain\r\n"
        . "Content-Length: " . length($body) . "\r\nConnection: close\r\n\r\n"
        . $body);
}


# FastCGI: the records of one request (BEGIN_REQUEST, PARAMS, STDIN), then
# STDOUT and END_REQUEST
sub serve_fastcgi {
    my ($c) = @_;
    my ($params, $id, $stdin_done) = ('', 1, 0);
    my $params_done = 0;

    until ($params_done && $stdin_done) {
        my ($ver, $type, $rid, $len, $pad) =
            unpack 'CCnnC', read_n($c, 8);
        my $content = read_n($c, $len + $pad);
        $content = substr($content, 0, $len);
        $id = $rid;

        if ($type == 4) {
            $len ? ($params .= $content) : ($params_done = 1);
        } elsif ($type == 5) {
            $stdin_done = 1 unless $len;
        }
    }

    my @pairs;
    while (length $params) {
        my @len;
        for (1 .. 2) {
            my $b = unpack 'C', $params;
            if ($b & 0x80) {
                push @len, unpack('N', substr($params, 0, 4, '')) & 0x7fffffff;
            } else {
                push @len, $b;
                substr($params, 0, 1, '');
            }
        }
        my $k = substr($params, 0, $len[0], '');
        my $v = substr($params, 0, $len[1], '');
        push @pairs, [$k, $v];
    }

    my $out = cgi_answer(@pairs);

    while (length $out) {
        my $chunk = substr($out, 0, 32768, '');
        write_all($c, pack('CCnnCC', 1, 6, $id, length $chunk, 0, 0) . $chunk);
    }

    write_all($c, pack('CCnnCC', 1, 6, $id, 0, 0, 0)
        . pack('CCnnCC', 1, 3, $id, 8, 0, 0) . pack('NCCCC', 0, 0, 0, 0, 0));
}


# uwsgi: a 4-byte header (modifier1, size little-endian, modifier2), the
# variables as little-endian length-prefixed strings; answered in HTTP
sub serve_uwsgi {
    my ($c) = @_;

    my ($m1, $size, $m2) = unpack 'CvC', read_n($c, 4);
    my $vars = read_n($c, $size);

    my @pairs;
    while (length $vars) {
        my $kl = unpack 'v', substr($vars, 0, 2, '');
        my $k = substr($vars, 0, $kl, '');
        my $vl = unpack 'v', substr($vars, 0, 2, '');
        my $v = substr($vars, 0, $vl, '');
        push @pairs, [$k, $v];
    }

    my ($status, $body) = answer(grep { $_->[0] =~ /^(?:HTTP_|ECHO_)/ }
        @pairs);

    write_all($c, "HTTP/1.0 $status Echo\r\nContent-Type: text/plain\r\n"
        . "Content-Length: " . length($body) . "\r\n\r\n" . $body);
}


# SCGI: a netstring of NUL-separated names and values; answered CGI-style
sub serve_scgi {
    my ($c) = @_;
    my $len = '';

    while ((my $ch = read_n($c, 1)) ne ':') {
        die "bad netstring\n" unless $ch =~ /\d/ && length $len < 10;
        $len .= $ch;
    }

    my $h = read_n($c, $len + 1);
    chop $h;

    my @f = split /\0/, $h, -1;
    pop @f if @f % 2;
    my @pairs;
    push @pairs, [splice @f, 0, 2] while @f;

    write_all($c, cgi_answer(@pairs));
}

1;
