#!/usr/bin/perl

# projkey: nginx -s reload while admin writes are in flight.  A graceful
# reload must let the old workers finish their requests: every admin call
# gets its answer, a key exists in the database exactly when its create
# was answered 201, and no "open socket left" alert.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use POSIX ();
use Test::More;
use Time::HiRes qw(time sleep);

use Projkey::Test;
use Projkey::Admin;

###############################################################################

my $t = Projkey::Test->new()->plan(4);

$t->write_config(<<'EOF')->run();
worker_processes 2;

http {
    projkey_zone keys:4m db=%%TESTDIR%%/keys.db sync=200ms;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /admin/ {
            projkey_admin         keys;
            projkey_admin_user    alice;
        }
    }
}

EOF

my $api = Projkey::Admin->new($t, project => undef);

my @kids;
for my $c (1 .. 3) {
    my $p = fork() // die "fork: $!\n";
    if ($p == 0) {
        open my $fh, '>', $t->testdir . "/client.$c" or POSIX::_exit(1);
        my $end = time + 8;
        my $i = 0;
        while (time < $end && $i++ < 5000) {
            my $r = $api->call('POST', 'keys', { name => "c$c-$i" });
            print $fh "c$c-$i $r->{status}\n";
        }
        close $fh;
        POSIX::_exit(0);
    }
    push @kids, $p;
}

for (1 .. 7) {
    sleep 1;
    $t->run_cmd($Projkey::Test::NGINX, '-p', $t->testdir . '/', '-c',
        $t->testdir . '/nginx.conf', '-s', 'reload');
}
waitpid($_, 0) for @kids;

my %status = map { split ' ' } map { split /\n/, $t->read_file("/$_") }
    map { $t->testdir . "/client.$_" } 1 .. 3;
my @unanswered = grep { $status{$_} == 0 } sort keys %status;
my @created = grep { $status{$_} == 201 } keys %status;

is("@unanswered", '', 'every admin call was answered across 7 reloads');

sleep 0.5;
my %db = map { $_->{name} => 1 } @{$t->cli_keys() // []};
is(scalar(grep { !$db{$_} } @created), 0, 'every 201 is in the database');
my @orphans = grep { $db{$_} && $status{$_} != 201 } keys %status;
is("@orphans", '', 'no key in the database whose create was not answered');
ok(@created > 50, 'creates went on (' . scalar(@created) . ')');

$t->done();

###############################################################################
