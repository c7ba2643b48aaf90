package Projkey::Pg;

# A private PostgreSQL for a test: initdb and pg_ctl (Debian's, any
# version) in a fresh temporary directory owned by the postgres user
# (PostgreSQL refuses to run as root), listening on a unix socket in that
# directory and on a free loopback port, with a role and a database for
# projkey.  It is stopped (immediate) and removed when the test exits,
# dies or is interrupted.  No system cluster is touched.
#
#   my $pg = Projkey::Pg->new();
#   my $uri = $pg->uri;                  # postgresql://projkey:...@127.0.0.1:P/projkey
#   my $out = $pg->psql('SELECT 1');     # as the superuser, over the socket
#   $pg->stop();                         # or leave it to the end
#
# Environment: PROJKEY_TEST_KEEP=1 keeps the directory (the server is
# stopped all the same); PROJKEY_PG_BIN at another bin directory.

use strict;
use warnings;

use File::Path qw(remove_tree);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use Test::More ();

my @servers;

# the newest installed server's binaries
sub bindir {
    return $ENV{PROJKEY_PG_BIN} if $ENV{PROJKEY_PG_BIN};

    my @dirs = sort { ver($b) <=> ver($a) }
        grep { -x "$_/initdb" && -x "$_/pg_ctl" }
        glob('/usr/lib/postgresql/*/bin');

    die "no PostgreSQL server found in /usr/lib/postgresql: run "
        . "scripts/deps\n" unless @dirs;

    return $dirs[0];
}

sub ver { ($_[0] =~ m{/(\d+)(?:\.(\d+))?/bin$}) ? $1 * 100 + ($2 // 0) : 0 }

sub new {
    my ($class, %opts) = @_;

    my $self = bless {
        bin      => bindir(),
        owner    => $$,
        user     => 'projkey',
        database => 'projkey',
        password => random_word(24),
        listen   => $opts{listen},
        allow    => $opts{allow},
    }, $class;

    # /tmp, not the test's directory: the postgres user must reach it
    $self->{dir} = tempdir('projkey-pg-XXXXXX', TMPDIR => 1, CLEANUP => 0);
    $self->{data} = "$self->{dir}/data";

    if ($> == 0) {
        my (undef, undef, $uid, $gid) = getpwnam('postgres')
            or die "no postgres user: install postgresql\n";
        chown $uid, $gid, $self->{dir} or die "chown $self->{dir}: $!\n";
        $self->{as} = ['runuser', '-u', 'postgres', '--'];
    } else {
        $self->{as} = [];
    }
    chmod 0700, $self->{dir};

    push @servers, $self;

    $self->{port} = free_port();

    if ($opts{standby_of}) {
        $self->{user} = $opts{standby_of}{user};
        $self->{password} = $opts{standby_of}{password};
        $self->copy_from($opts{standby_of});
    } else {
        $self->start();
        $self->setup();
    }

    return $self;
}

# A streaming standby of this server (pg_basebackup -R), on a port of its
# own: Projkey::Pg->new(standby_of => $primary).  promote() makes it the
# primary.
sub standby {
    my ($self) = @_;
    return Projkey::Pg->new(standby_of => $self);
}

sub copy_from {
    my ($self, $primary) = @_;
    my $b = $self->{bin};

    my ($rc, $out) = $self->run_as("$b/pg_basebackup", '-D', $self->{data},
        '-h', $primary->{dir}, '-p', $primary->{port}, '-U', 'postgres',
        '-R', '-X', 'stream', '-c', 'fast', '--no-sync');
    die "pg_basebackup failed ($rc):\n$out" if $rc;

    $self->{options} = $primary->{options};
    $self->{options} =~ s/-p \d+/-p $self->{port}/;
    $self->{options} =~ s/unix_socket_directories=\S+/unix_socket_directories=$self->{dir}/;

    return $self->resume();
}

sub promote {
    my ($self) = @_;
    my ($rc, $out) = $self->run_as("$self->{bin}/pg_ctl", '-D', $self->{data},
        '-w', 'promote');
    die "pg_ctl promote failed ($rc):\n$out" if $rc;
    return $self;
}

sub dir { $_[0]{dir} }
sub port { $_[0]{port} }
sub socket_dir { $_[0]{dir} }
sub password { $_[0]{password} }
sub user { $_[0]{user} }
sub database { $_[0]{database} }

# the projkey role's URI, over TCP (as a remote node would connect)
# uri(host => ADDR): through another of the server's listen addresses
sub uri {
    my ($self, %opts) = @_;
    return "postgresql://$self->{user}:$self->{password}\@"
        . ($opts{host} // '127.0.0.1') . ":$self->{port}/$self->{database}";
}

# the same role through the unix socket, no password in the URI
sub socket_uri {
    my ($self) = @_;
    return "postgresql://$self->{user}\@/$self->{database}?host="
        . "$self->{dir}&port=$self->{port}";
}

sub run_as {
    my ($self, @cmd) = @_;

    my $out = qx{@{[ join ' ', map { quote($_) } @{$self->{as}}, @cmd ]} 2>&1};
    my $rc = $? >> 8;

    return wantarray ? ($rc, $out) : $out;
}

sub start {
    my ($self) = @_;
    my $b = $self->{bin};

    my ($rc, $out) = $self->run_as("$b/initdb", '-D', $self->{data},
        '-U', 'postgres', '--auth-local=trust',
        '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C.UTF-8',
        '--no-sync');
    die "initdb failed ($rc):\n$out" if $rc;

    # fsync off: a test's cluster is thrown away, and the machine is shared
    # Projkey::Pg->new(listen => ADDR, allow => CIDR): one more address,
    # for clients of CIDR (a network namespace's nginx)
    if ($self->{allow}) {
        open my $fh, '>>', "$self->{data}/pg_hba.conf"
            or die "pg_hba.conf: $!\n";
        print $fh "host all all $self->{allow} scram-sha-256\n";
        close $fh;
    }

    my $o = "-c listen_addresses=127.0.0.1"
        . ($self->{listen} ? ",$self->{listen}" : '') . " -p $self->{port}"
        . " -c unix_socket_directories=$self->{dir} -c fsync=off"
        . " -c synchronous_commit=off -c full_page_writes=off"
        . " -c max_connections=30 -c shared_buffers=16MB";

    $self->{options} = $o;

    return $self->resume();
}

# stops the server, its data kept, for resume(): "fast" (the default)
# ends every session and writes what was committed; "immediate" is a
# crash, and with synchronous_commit off it loses the last commits
sub halt {
    my ($self, $mode) = @_;

    my ($rc, $out) = $self->run_as("$self->{bin}/pg_ctl", '-D',
        $self->{data}, '-m', $mode // 'fast', '-w', 'stop');
    die "pg_ctl stop failed ($rc):\n$out\n" if $rc;

    $self->{running} = 0;
    return $self;
}

# starts the server on its data again, on the same port
sub resume {
    my ($self) = @_;

    my ($rc, $out) = $self->run_as("$self->{bin}/pg_ctl", '-D',
        $self->{data}, '-l', "$self->{dir}/postgresql.log", '-w', '-t', '60',
        '-o', $self->{options}, 'start');
    die "pg_ctl start failed ($rc):\n$out\n" . $self->log() if $rc;

    $self->{running} = 1;
    return $self;
}

sub setup {
    my ($self) = @_;

    $self->psql("CREATE ROLE $self->{user} LOGIN PASSWORD "
        . "'$self->{password}'");
    $self->psql("CREATE DATABASE $self->{database} OWNER $self->{user}");

    # pg_trgm, as an operator would install it (it needs a superuser)
    $self->psql('CREATE EXTENSION IF NOT EXISTS pg_trgm',
        db => $self->{database}, may_fail => 1);

    return $self;
}

# runs SQL as the superuser over the socket; dies on an error unless
# may_fail; returns psql's output (unaligned, tuples only)
sub psql {
    my ($self, $sql, %opts) = @_;

    my ($rc, $out) = $self->run_as("$self->{bin}/psql", '-X', '-q', '-A',
        '-t', '-v', 'ON_ERROR_STOP=1', '-h', $self->{dir}, '-p',
        $self->{port}, '-U', $opts{user} // 'postgres', '-d',
        $opts{db} // 'postgres', '-c', $sql);
    die "psql failed ($rc): $sql\n$out" if $rc && !$opts{may_fail};

    return wantarray ? ($rc, $out) : $out;
}

sub log {
    my ($self) = @_;
    open my $fh, '<', "$self->{dir}/postgresql.log" or return '';
    local $/;
    return <$fh>;
}

sub stop {
    my ($self) = @_;

    # a forked child (nginx, a CLI) exits through END too: only the
    # process that made the server stops it
    return if $$ != $self->{owner};

    if ($self->{running}) {
        $self->{running} = 0;
        $self->run_as("$self->{bin}/pg_ctl", '-D', $self->{data}, '-m',
            'immediate', '-w', 'stop');
    }

    if ($self->{dir} && -d $self->{dir} && !$ENV{PROJKEY_TEST_KEEP}) {
        remove_tree($self->{dir});
    } elsif ($self->{dir}) {
        Test::More::diag("PostgreSQL directory $self->{dir}");
    }
    delete $self->{dir} unless $ENV{PROJKEY_TEST_KEEP};

    return;
}

sub free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
        Proto => 'tcp', Listen => 1) or die "cannot bind 127.0.0.1:0: $!\n";
    my $port = $s->sockport();
    close $s;
    return $port;
}

sub random_word {
    my ($n) = @_;
    my @c = ('a' .. 'z', 'A' .. 'Z', '0' .. '9');
    open my $fh, '<', '/dev/urandom' or die "/dev/urandom: $!\n";
    my $bytes;
    read $fh, $bytes, $n;
    return join '', map { $c[ord($_) % @c] } split //, $bytes;
}

sub quote {
    my ($s) = @_;
    $s =~ s/'/'\\''/g;
    return "'$s'";
}

# an interrupted test still stops its server: END runs on exit, not on a
# signal's default action
my %signo = (HUP => 1, INT => 2, TERM => 15);
for my $sig (keys %signo) {
    $SIG{$sig} = sub { exit 128 + $signo{$sig} } unless $SIG{$sig};
}

END {
    my $status = $?;
    eval { $_->stop() } for @servers;
    $? = $status;
}

sub DESTROY {
    my ($self) = @_;
    local ($?, $@);
    eval { $self->stop() };
}

1;
