#!/usr/bin/perl

# The private PostgreSQL of t/lib/Projkey/Pg.pm: it starts, the projkey
# role reaches its database by TCP with the password (and not without it)
# and by the socket, and it is stopped and removed when the test that made
# it exits, even by dying.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More tests => 7;

use Projkey::Pg;

my $pg = Projkey::Pg->new();
my $psql = $pg->{bin} . '/psql';

like($pg->uri, qr{^postgresql://projkey:\w+\@127\.0\.0\.1:\d+/projkey$},
    'a TCP URI with the role and its password');

is(qx{$psql -X -At -d '${\ $pg->uri}' -c 'SELECT current_user' 2>&1},
    "projkey\n", 'the role connects over TCP');

(my $nopw = $pg->uri) =~ s/:\w+\@/\@/;
isnt(system("PGPASSWORD= $psql -X -At -w -d '$nopw' -c 'SELECT 1' "
    . '> /dev/null 2>&1'), 0, 'not without the password');

is(qx{$psql -X -At -d '${\ $pg->socket_uri}' -c 'SELECT current_database()'},
    "projkey\n", 'and over the unix socket');

my $dir = $pg->dir;
$pg->stop();
ok(!-d $dir, 'stop removes the directory');

# a child that makes a server and dies leaves none behind
my $out = qx{$^X -I$FindBin::Bin/lib -MProjkey::Pg -e '
    my \$pg = Projkey::Pg->new(); print \$pg->dir, " ", \$pg->port, "\\n";
    die "on purpose\\n"' 2>/dev/null};
my ($cdir, $cport) = split ' ', $out // '';
ok($cdir && !-d $cdir, 'a test that dies removes its directory');
ok($cport && !IO::Socket::INET->new(PeerAddr => "127.0.0.1:$cport"),
    'and its server is stopped');
