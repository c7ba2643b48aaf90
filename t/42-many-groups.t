#!/usr/bin/perl

# projkey: the worker user may reach the database's directory through any
# of its groups, however many it is in (getgrouplist() said too many past
# 64, and the start was refused with a false "must be writable").  Makes a
# user in 70 groups, the directory writable by the 70th only.  Needs root
# (useradd, groupadd), which make test has.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;

use Projkey::Test;

###############################################################################

$> == 0 or die "t/42-many-groups.t needs root (useradd, groupadd)\n";

my $t = Projkey::Test->new()->plan(3);

my $tag = "pk$$";
my $user = "${tag}u";
my @groups = map { "${tag}g$_" } 1 .. 70;
my @made;

END {
    system('userdel', $user) if grep { $_ eq 'user' } @made;
    system('groupdel', $_) for grep { $_ ne 'user' } @made;
}

for my $g (@groups) {
    system('groupadd', $g) == 0 or die "groupadd $g failed\n";
    push @made, $g;
}
system('useradd', '-M', '-N', '-g', 'nogroup', '-s', '/usr/sbin/nologin',
    '-G', join(',', @groups), $user) == 0 or die "useradd failed\n";
push @made, 'user';

my $d = $t->testdir;
mkdir "$d/db" or die "mkdir: $!\n";
my $gid = getgrnam($groups[-1]);
chown 0, $gid, "$d/db" or die "chown: $!\n";
chmod 02775, "$d/db";

my ($id, $key) = $t->create_key('grouped', db => "$d/db/keys.db");
chown 0, $gid, "$d/db/keys.db";
chmod 0664, "$d/db/keys.db";

my (undef, $ids) = $t->run_cmd('id', '-G', $user);
my $n = () = $ids =~ /\d+/g;
ok($n > 64, "the user is in $n groups");

$t->write_config(<<"EOF")->run();
user $user nogroup;

http {
    projkey_zone keys:4m db=%%TESTDIR%%/db/keys.db sync=200ms;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /api/ {
            projkey keys;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;

        location / {
            return 204;
        }
    }
}
EOF

like($t->get('/api/', Authorization => "Bearer $key"), qr/^HTTP\/1\.1 204 /,
    'nginx started: the directory is writable through the 70th group');
unlike($t->error_log, qr/must be writable/, 'no false "must be writable"');

###############################################################################

$t->done();

###############################################################################
