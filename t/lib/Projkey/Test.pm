package Projkey::Test;

# A small test harness for projkey: a private nginx (the Debian binary with
# our module loaded) in a temporary directory, raw HTTP to it, the operator
# CLI on the test's own database, and the error.log checks that every test
# file ends with.  Written in the spirit of nginx-tests' Test::Nginx.
#
#   my $t = Projkey::Test->new()->has(qw/http_v2/)->plan(5);
#   my ($id, $secret) = $t->create_key('ci');
#   $t->write_config(<<'EOF')->run();
#   http { server { listen 127.0.0.1:%%PORT_0%%; ... } }
#   EOF
#   like($t->get('/api/', Authorization => "Bearer $secret"), qr/ 200 /,
#       'valid key');
#   $t->done();     # stops nginx, adds "no alerts" and "no sanitizer errors"
#
# Requests: $t->get($uri, Header => value, ...) keeps header order and
# duplicates; -port => N and -timeout => S go to another port or wait
# longer.  $t->http($raw) sends any bytes.  Projkey::Test::parse_response
# gives (status, {lower-case header => value}, body).
#
# has(@modules) states the nginx modules a file needs beyond the default
# ones (names as in nginx-tests: http_v2, auth_request, realip, ssl,
# threads); an nginx without one of them fails the file, naming it.
# nginx_version() is the running binary's version as a number (1026003 for
# 1.26.3), to compare with nginx's own nginx_version.
#
# Projkey::Test->new(netns => NAME, host => ADDR) runs nginx in the network
# namespace NAME (Projkey::Netns) and sends requests to ADDR, its address
# there, instead of 127.0.0.1.
#
# Environment: PROJKEY_TEST_KEEP=1 keeps the test directory;
# PROJKEY_TEST_MODULE and PROJKEY_TEST_CLI point at other builds (e.g. a
# sanitizer build, with PROJKEY_TEST_PRELOAD="libasan.so.8 libubsan.so.1"
# to load its runtime into nginx); PROJKEY_TEST_MODULE=static for an nginx
# built with the module inside (--add-module: no load_module line);
# PROJKEY_NGINX at another nginx binary.

use strict;
use warnings;

use Cwd qw(abs_path);
use Errno qw(EINTR);
use File::Basename qw(dirname);
use File::Spec;
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(:sys_wait_h);
use Socket qw(SOL_SOCKET SO_REUSEADDR);
use Test::More ();
use Time::HiRes qw(sleep time);

our $NGINX = $ENV{PROJKEY_NGINX} || '/usr/sbin/nginx';

my @instances;


sub new {
    my ($class, %opts) = @_;

    my $root = abs_path(File::Spec->catdir(dirname(__FILE__),
        File::Spec->updir, File::Spec->updir, File::Spec->updir));

    my $self = bless {
        root     => $root,
        module   => $ENV{PROJKEY_TEST_MODULE}
                    // "$root/build/ngx_http_projkey_module.so",
        cli_path => $ENV{PROJKEY_TEST_CLI} // "$root/build/projkey",
        ports    => {},
        expected => [],
        done     => 0,
        checks   => 0,
        host     => $opts{host} // '127.0.0.1',
        netns    => $opts{netns},
    }, $class;

    # PROJKEY_TEST_MODULE=none runs nginx without the module (harness
    # tests), =static an nginx that has it built in
    for my $f ($self->{module}, $self->{cli_path}) {
        next if $f eq 'none' || $f eq 'static';
        die "$f is missing: run make first\n" unless -f $f;
    }

    # load_module takes a relative path from nginx's prefix, the test dir
    $self->{module} = abs_path($self->{module}) if -f $self->{module};

    $self->{testdir} = tempdir('projkey-test-XXXXXX', TMPDIR => 1,
        CLEANUP => !$ENV{PROJKEY_TEST_KEEP});
    chmod 0755, $self->{testdir};
    Test::More::diag("test directory $self->{testdir}") if $ENV{PROJKEY_TEST_KEEP};

    # PROJKEY_TEST_ENGINE=pg: the file's keys.db is a private PostgreSQL
    # (make test-pg runs the files that need no SQLite of their own so)
    if (($ENV{PROJKEY_TEST_ENGINE} // '') eq 'pg') {
        require Projkey::Pg;
        $self->{pg} = Projkey::Pg->new();
        my ($rc, undef, $err) = $self->run_cmd($self->{cli_path}, '--db',
            $self->{pg}->uri, 'init');
        die "projkey init on PostgreSQL failed: $err\n" if $rc;
    }

    push @instances, $self;
    return $self;
}

sub testdir { $_[0]{testdir} }
sub root { $_[0]{root} }
sub module_path { $_[0]{module} }
sub pg { $_[0]{pg} }
sub db { $_[0]{pg} ? $_[0]{pg}->uri : "$_[0]{testdir}/keys.db" }

# plan(N): N tests of the file plus the two error.log checks of done()
sub plan {
    my ($self, $n) = @_;
    Test::More::plan(tests => $n + 2);
    $self->{checks} = 1;
    return $self;
}

# a free loopback port, the same one for the same index during a test
sub port {
    my ($self, $n) = @_;
    $n //= 0;

    return $self->{ports}{$n} if defined $self->{ports}{$n};

    my %used = map { $_ => 1 } values %{$self->{ports}};

    for (1 .. 100) {
        my $s = IO::Socket::INET->new(
            LocalAddr => '127.0.0.1',
            LocalPort => 0,
            Proto     => 'tcp',
            Listen    => 1,
        ) or die "cannot bind 127.0.0.1:0: $!\n";
        my $port = $s->sockport();
        close $s;
        next if $used{$port};
        return $self->{ports}{$n} = $port;
    }

    die "no free port\n";
}

# the modules in every nginx not configured --without-<name>_module
my %default = map { $_ => 1 } qw(http access auth_basic autoindex browser
    charset empty_gif fastcgi geo grpc gzip limit_conn limit_req map
    memcached mirror proxy referer rewrite scgi split_clients ssi
    upstream_hash upstream_ip_hash upstream_keepalive upstream_least_conn
    upstream_random upstream_zone userid uwsgi);

# The modules this file needs, checked against "nginx -V": a module missing
# fails the file (one failed test naming it), never a skip.  A dynamic one,
# nginx's own (--with-..._module=dynamic) or another's (Debian's
# libnginx-mod-*: has(qw/ndk lua/)), counts when its .so is in nginx's
# modules path, /usr/lib/nginx/modules on Debian; the configuration then
# loads it, in the order named.
sub has {
    my ($self, @names) = @_;

    my ($args) = $self->nginx_v =~ /^configure arguments: (.*)$/m;
    $args //= '';
    my %arg = map { /^--(with|without)-(.+?)(?:=(\S*))?$/
        ? ("$1-$2" => $3 // '') : () } split ' ', $args;
    my @addons = map { m{^--add-module=(?:.*/)?([^/]+?)/*$} ? $1 : () }
        split ' ', $args;

    my ($prefix) = $args =~ /--prefix=(\S+)/;
    my ($mpath) = $args =~ /--modules-path=(\S+)/;
    $mpath //= ($prefix // '/usr/local/nginx') . '/modules';

    my (@missing, @load);

    for my $name (@names) {
        my @with = ($name, "${name}_module", "http_${name}_module");
        my @built = grep { exists $arg{"with-$_"} } @with;

        if (grep { exists $arg{"without-$_"} } @with) {
            push @missing, "$name (built --without)";
            next;
        }

        # a default module, one built in, or an addon linked in
        # (--add-module=.../lua-nginx-module for lua)
        next if $default{$name}
            || grep({ $arg{"with-$_"} ne 'dynamic' } @built)
            || grep({ /(?:^|[-_])\Q$name\E(?:$|[-_])/ } @addons);

        my ($so) = grep { -f } map { ("$mpath/ngx_${_}_module.so",
            "$mpath/${_}_module.so") } $name, "http_$name";
        ($so) = grep { -f } map { glob("$mpath/ngx_${_}_*module.so "
            . "$mpath/${_}_*module.so") } $name, "http_$name"
            unless $so;

        if ($so) {
            push @load, $so;
        } else {
            push @missing, "$name (" . (@built ? 'built =dynamic'
                : 'no ' . with_option($name)) . ", no .so in $mpath)";
        }
    }

    if (@missing) {
        Test::More::plan(tests => 1);
        Test::More::fail("nginx has the modules this test needs: @names");
        Test::More::diag("$NGINX lacks " . join(', ', @missing)
            . "; \"$NGINX -V\" lists what it was built with");
        $self->{done} = 1;
        exit;
    }

    push @{$self->{load}}, @load;
    return $self;
}

# the configure option that builds a module
sub with_option {
    my ($name) = @_;
    return "--with-$name"
        if $name =~ /^(?:compat|debug|file-aio|mail|pcre-jit|stream|threads)$/;
    return "--with-${name}_module" if $name =~ /^(?:http|stream|mail)_/;
    return "--with-http_${name}_module";
}

# "nginx -V", once per binary
my %nginx_v;

sub nginx_v {
    my ($self) = @_;
    return $nginx_v{$NGINX} //= do {
        my ($rc, $out, $err) = $self->run_cmd($NGINX, '-V');
        die "$NGINX -V failed (exit $rc): $err\n" if $rc;
        $out . $err;
    };
}

# 1.26.3 as 1026003, like nginx's nginx_version
sub nginx_version {
    my ($self) = @_;
    my ($x, $y, $z) =
        $self->nginx_v =~ m{nginx version: \S+?/(\d+)\.(\d+)\.(\d+)}
        or die "no version in $NGINX -V\n";
    return $x * 1000000 + $y * 1000 + $z;
}

# lines matching one of these are not counted as alerts by done()
sub expect_errors {
    my ($self, @re) = @_;
    push @{$self->{expected}}, @re;
    return $self;
}


# --- configuration ----------------------------------------------------------

sub expand {
    my ($self, $text) = @_;

    my $uri = $self->{pg} ? $self->{pg}->uri : undef;
    $text =~ s/\bdb=%%TESTDIR%%\/keys\.db\b/db=$uri/g if $uri;
    $text =~ s/%%TESTDIR%%/$self->{testdir}/g;
    $text =~ s/%%MODULE%%/$self->{module}/g;
    $text =~ s/%%PORT_(\d+)%%/$self->port($1)/ge;

    return $text;
}

sub write_file {
    my ($self, $name, $content) = @_;

    my $path = $name =~ m{^/} ? $name : "$self->{testdir}/$name";
    open my $fh, '>', $path or die "cannot write $path: $!\n";
    binmode $fh;
    print $fh $content;
    close $fh or die "cannot write $path: $!\n";

    return $self;
}

sub read_file {
    my ($self, $name) = @_;

    my $path = $name =~ m{^/} ? $name : "$self->{testdir}/$name";
    open my $fh, '<', $path or return '';
    binmode $fh;
    local $/;
    my $content = <$fh>;
    close $fh;

    return $content // '';
}

# The test gives the configuration after the preamble (usually just the
# http block); the harness adds what every private nginx needs.
sub write_config {
    my ($self, $text) = @_;

    my $d = $self->{testdir};
    $self->{template} = $text;
    $text = $self->expand($text);

    my $pre = join '', map { "load_module $_;\n" } @{$self->{load} // []},
        grep { $_ ne 'none' && $_ ne 'static' } $self->{module};
    $pre .= "user root root;\n" unless $text =~ /^\s*user\s/m;
    $pre .= "pid $d/nginx.pid;\n";
    $pre .= "error_log $d/error.log info;\n"
        unless $text =~ /^\s*error_log\s/m;
    $pre .= "events { worker_connections 1024; }\n"
        unless $text =~ /^\s*events\s*\{/m;

    my $paths = join '', map { "    ${_}_temp_path $d/${_}_temp;\n" }
        qw(client_body proxy fastcgi uwsgi scgi);
    $paths .= "    access_log $d/access.log;\n";

    $text =~ s/^(\s*http\s*\{)/$1\n$paths/m;

    $self->{config} = $pre . "\n" . $text;
    $self->write_file('nginx.conf', $self->{config});

    return $self;
}

sub config { $_[0]{config} }


# --- nginx processes --------------------------------------------------------

sub nginx_args {
    my ($self, $elog) = @_;
    my $d = $self->{testdir};
    return (($self->{netns} ? ('ip', 'netns', 'exec', $self->{netns}) : ()),
        $NGINX, '-p', "$d/", '-c', "$d/nginx.conf", '-e', $elog);
}

# runs a command, returns (exit code, stdout, stderr)
sub run_cmd {
    my ($self, @cmd) = @_;

    my $out = File::Temp->new(DIR => $self->{testdir});
    my $err = File::Temp->new(DIR => $self->{testdir});

    my $pid = fork() // die "fork: $!\n";

    if ($pid == 0) {
        # a sanitizer build of the module needs its runtime in nginx
        if ($ENV{PROJKEY_TEST_PRELOAD} && grep { $_ eq $NGINX } @cmd) {
            $ENV{LD_PRELOAD} = $ENV{PROJKEY_TEST_PRELOAD};
            $ENV{ASAN_OPTIONS} //= 'detect_leaks=0';
        }
        open STDIN, '<', '/dev/null';
        open STDOUT, '>&', $out or POSIX::_exit(127);
        open STDERR, '>&', $err or POSIX::_exit(127);
        { no warnings 'exec'; exec { $cmd[0] } @cmd; }
        POSIX::_exit(127);
    }

    waitpid($pid, 0);
    my $rc = $? & 127 ? 128 + ($? & 127) : $? >> 8;

    return ($rc, $self->read_file("$out"), $self->read_file("$err"));
}

# (exit code, stdout and stderr together) of nginx -t on the written config
sub nginx_t {
    my ($self) = @_;
    my ($rc, $out, $err) = $self->run_cmd($self->nginx_args('stderr'), '-t');
    return ($rc, $out . $err);
}

sub listen_ports {
    my ($self) = @_;
    my %p;
    $p{$1} = 1
        while ($self->{config} // '') =~ /^\s*listen\s+(?:[\w.\[\]:]*:)?(\d+)[\s;]/mg;
    return sort { $a <=> $b } keys %p;
}

sub run {
    my ($self) = @_;

    die "write_config first\n" unless defined $self->{config};
    die "nginx is already running\n" if $self->{master};

    unlink "$self->{testdir}/nginx.pid";

    my ($rc, $out, $err);

    for my $try (1 .. 3) {
        ($rc, $out, $err) =
            $self->run_cmd($self->nginx_args("$self->{testdir}/error.log"));
        last if $rc == 0 || $self->{started};

        # a port picked as free was taken meanwhile by a parallel test:
        # pick new ones (only before the first start, when nobody has
        # used the numbers yet)
        last unless "$out$err" =~ /Address already in use/;
        rename "$self->{testdir}/error.log", "$self->{testdir}/error.log.$try";
        $self->{ports} = {};
        $self->write_config($self->{template});
    }

    if ($rc != 0) {
        die "nginx failed to start (exit $rc):\n$out$err\n"
            . $self->error_log;
    }

    my $deadline = time + 10;
    my $master;

    while (time < $deadline) {
        $master = $self->read_file('nginx.pid');
        last if $master =~ /^\d+$/m;
        sleep 0.05;
    }

    ($master) = $master =~ /(\d+)/;
    die "nginx wrote no pid file:\n" . $self->error_log unless $master;
    $self->{master} = $master;

    # in a namespace, only what listens on its address is seen from here
    my @ports = $self->{netns}
        ? $self->{config} =~ /^\s*listen\s+\Q$self->{host}\E:(\d+)[\s;]/mg
        : $self->listen_ports;

    for my $port (@ports) {
        while (1) {
            my $s = IO::Socket::INET->new(
                PeerAddr => "$self->{host}:$port", Timeout => 1);
            if ($s) {
                close $s;
                last;
            }
            if (time > $deadline || !$self->alive($master)) {
                my $log = $self->error_log;
                $self->stop();
                die "nginx does not answer on port $port:\n$log";
            }
            sleep 0.05;
        }
    }

    $self->wait_workers(undef, $deadline);
    $self->{started} = 1;

    return $self;
}

sub alive {
    my ($self, $pid) = @_;

    return 0 unless $pid && kill(0, $pid);

    # a daemon's exited master may linger as a zombie if nothing reaps it
    my $stat = $self->read_file("/proc/$pid/stat");
    return 0 if $stat =~ /^\d+ \(.*\) Z/s;

    return 1;
}

sub children {
    my ($self, $ppid) = @_;
    my @pids;

    opendir my $dh, '/proc' or return ();
    for my $pid (grep { /^\d+$/ } readdir $dh) {
        my $stat = $self->read_file("/proc/$pid/stat");
        next unless $stat =~ /^\d+ \(.*\) (\S) (\d+) /s;
        next if $1 eq 'Z';
        push @pids, $pid + 0 if $2 == $ppid;
    }
    closedir $dh;

    return sort { $a <=> $b } @pids;
}

# the pids of the master's worker processes (those with "worker" in their
# title: cache loaders and managers are not workers)
sub worker_pids {
    my ($self) = @_;
    return () unless $self->{master};

    return grep {
        my $cmd = $self->read_file("/proc/$_/cmdline");
        $cmd =~ /worker process/ && $cmd !~ /shutting down/;
    } $self->children($self->{master});
}

sub worker_count {
    my ($self) = @_;
    my $n = 1;
    $n = $1 if ($self->{config} // '') =~ /^\s*worker_processes\s+(\d+)/m;
    return $n;
}

# waits until there are as many workers as configured, none of them in old
sub wait_workers {
    my ($self, $old, $deadline) = @_;
    my %old = map { $_ => 1 } @{$old // []};
    my $want = $self->worker_count;

    while (1) {
        my @new = grep { !$old{$_} } $self->worker_pids;
        return @new if @new >= $want;
        die "nginx workers did not start:\n" . $self->error_log
            if time > $deadline;
        sleep 0.05;
    }
}

sub reload {
    my ($self) = @_;

    die "nginx is not running\n" unless $self->{master};
    $self->{config} = $self->read_file('nginx.conf');

    my @old = $self->children($self->{master});
    kill 'HUP', $self->{master};

    $self->wait_workers(\@old, time + 10);

    # old workers finish their connections; give them a moment to go
    my $deadline = time + 5;
    while (time < $deadline) {
        my %now = map { $_ => 1 } $self->children($self->{master});
        last unless grep { $now{$_} } @old;
        sleep 0.05;
    }

    return $self;
}

sub stop {
    my ($self) = @_;

    my $master = delete $self->{master} or return $self;

    kill 'QUIT', $master;

    for my $sig (qw(TERM KILL)) {
        my $deadline = time + 10;
        while (time < $deadline) {
            return $self unless $self->alive($master);
            sleep 0.05;
        }
        kill $sig, $master;
    }

    sleep 0.2;
    return $self;
}

sub restart {
    my ($self) = @_;
    $self->stop();
    return $self->run();
}


# --- HTTP -------------------------------------------------------------------

# sends raw bytes, returns everything the server sent until it closed
sub http {
    my ($self, $request, %opts) = @_;

    my $port = $opts{port} // $self->port(0);
    my $timeout = $opts{timeout} // 10;

    my $s = IO::Socket::INET->new(
        PeerAddr => "$self->{host}:$port",
        Proto    => 'tcp',
        Timeout  => $timeout,
    );

    unless ($s) {
        Test::More::note("connect to $self->{host}:$port failed: $!");
        return '';
    }

    binmode $s;
    $s->autoflush(1);

    local $SIG{PIPE} = 'IGNORE';
    syswrite($s, $request) // Test::More::note("write failed: $!");

    my $sel = IO::Select->new($s);
    my $reply = '';
    my $deadline = time + $timeout;

    while (time < $deadline) {
        next unless $sel->can_read($deadline - time);
        my $n = sysread($s, my $buf, 65536);
        if (!defined $n) {
            next if $! == EINTR;
            last;
        }
        last if $n == 0;
        $reply .= $buf;
    }

    close $s;
    return $reply;
}

# request($method, $uri, $body, Header => value, ...): header order and
# duplicates are kept; the options -port and -timeout go to http()
sub request {
    my ($self, $method, $uri, $body, @args) = @_;

    my (%opts, @headers);
    while (@args) {
        my ($k, $v) = splice @args, 0, 2;
        if ($k =~ /^-(\w+)$/) {
            $opts{$1} = $v;
        } else {
            push @headers, "$k: $v";
        }
    }

    my $r = "$method $uri HTTP/1.1\r\nHost: localhost\r\n"
        . "Connection: close\r\n";
    $r .= "$_\r\n" for @headers;
    if (defined $body) {
        $r .= "Content-Length: " . length($body) . "\r\n";
    }
    $r .= "\r\n";
    $r .= $body if defined $body;

    return $self->http($r, %opts);
}

sub get {
    my ($self, $uri, @headers) = @_;
    return $self->request('GET', $uri, undef, @headers);
}

# (status, {lower-case name => value}, body); repeated headers are joined
# with ", "; a chunked body is decoded
sub parse_response {
    my ($raw) = @_;
    $raw = $_[1] if ref $raw;   # also callable as a method

    return (0, {}, '') unless defined $raw && length $raw;

    my ($head, $body) = split /\r\n\r\n/, $raw, 2;
    $body //= '';

    my @lines = split /\r\n/, $head;
    my ($status) = (shift(@lines) // '') =~ m{^HTTP/\d\.\d (\d{3})};

    my %h;
    for (@lines) {
        my ($k, $v) = /^([^:]+):\s*(.*)$/ or next;
        $k = lc $k;
        $h{$k} = exists $h{$k} ? "$h{$k}, $v" : $v;
    }

    if (($h{'transfer-encoding'} // '') =~ /chunked/i) {
        my $out = '';
        while ($body =~ s/^([0-9a-fA-F]+)[^\r\n]*\r\n//) {
            my $len = hex $1;
            last if $len == 0;
            $out .= substr($body, 0, $len, '');
            $body =~ s/^\r\n//;
        }
        $body = $out;
    }

    return ($status // 0, \%h, $body);
}

# the body of a response
sub body {
    my ($raw) = @_;
    $raw = $_[1] if ref $raw;
    return (parse_response($raw))[2];
}


# --- the CLI ----------------------------------------------------------------

# cli(@args) or cli({ db => $path }, @args): (exit code, stdout, stderr)
sub cli {
    my ($self, @args) = @_;
    my $opts = ref $args[0] eq 'HASH' ? shift @args : {};
    my $db = $opts->{db} // $self->db;

    return $self->run_cmd($self->{cli_path}, '--db', $db, @args);
}

# like cli() with --json; returns the decoded stdout (undef if it is not
# JSON) and, in list context, also the exit code and stderr
sub cli_json {
    my ($self, @args) = @_;
    my $opts = ref $args[0] eq 'HASH' ? shift @args : {};

    my ($rc, $out, $err) = $self->cli($opts, '--json', @args);
    my $data = eval { JSON::PP->new->decode($out) };

    return wantarray ? ($data, $rc, $err) : $data;
}

# every key of the CLI's list --json, page after page (an array
# reference, undef if a page is not JSON): cli_keys() or cli_keys({ db })
sub cli_keys {
    my ($self, @args) = @_;
    my $opts = ref $args[0] eq 'HASH' ? shift @args : {};
    my (@keys, @after);

    for (1 .. 10000) {
        my $data = $self->cli_json($opts, 'list', '--limit', '1000', @args,
            @after);
        return undef unless ref $data eq 'HASH';
        push @keys, @{$data->{keys} // []};
        last unless defined $data->{next};
        @after = ('--after', $data->{next});
    }

    return \@keys;
}

# creates a key with the CLI: (id, secret), dies on failure
sub create_key {
    my ($self, $name, %opts) = @_;

    my ($data, $rc, $err) = $self->cli_json(\%opts, 'create', $name);

    die "projkey create $name failed (exit $rc): $err\n"
        unless $rc == 0 && ref $data eq 'HASH' && $data->{secret};

    return ($data->{key}{id}, $data->{secret});
}


# --- logs and the final checks -------------------------------------------

sub error_log { $_[0]->read_file('error.log') }

# polls code until it returns true or timeout seconds pass; returns the last
# value
sub wait_for {
    my ($self, $timeout, $code) = @_;
    my $deadline = time + $timeout;
    my $r;

    while (1) {
        $r = $code->();
        return $r if $r || time >= $deadline;
        sleep 0.05;
    }
}

# stops nginx and adds the two checks every test file ends with
sub done {
    my ($self) = @_;

    return if $self->{done}++;
    $self->stop();

    my $log = $self->error_log;
    my @lines = split /\n/, $log;

    my @alerts = grep {
        my $l = $_;
        /\[(?:alert|emerg|crit)\]/
            && !grep { $l =~ $_ } @{$self->{expected}};
    } @lines;

    my @san = grep {
        /AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:/
    } @lines;

    Test::More::ok(!@alerts, 'no alerts')
        or Test::More::diag(join "\n", @alerts);
    Test::More::ok(!@san, 'no sanitizer errors')
        or Test::More::diag(join "\n", @san);

    return;
}

END {
    my $status = $?;

    for my $t (@instances) {
        next if $t->{done};
        if ($t->{checks} && $status == 0) {
            $t->done();
        } else {
            $t->{done} = 1;
            eval { $t->stop() };
        }
    }

    $? = $status;
}

sub DESTROY {
    my ($self) = @_;
    local ($?, $@);
    eval { $self->stop() } if $self->{master};
}

1;
