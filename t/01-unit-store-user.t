#!/usr/bin/perl

# The C unit tests of the key store again, as an unprivileged user, the way
# a Debian package build runs them: no root, no chattr (test_store.c takes
# the file-mode path then).  As root, the binary is copied where "nobody"
# can run it; as another user it simply runs.

use strict;
use warnings;

use FindBin;
use File::Copy qw(copy);
use File::Temp qw(tempdir);

my $bin = "$FindBin::Bin/../build/test_store";

die "$bin is missing: run make unit first\n" unless -x $bin;

exec $bin or die "cannot exec $bin: $!\n" if $> != 0;

my $dir = tempdir('projkey-unit-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $dir;
copy($bin, "$dir/test_store") or die "copy: $!\n";
chmod 0755, "$dir/test_store";
chdir '/';

system('runuser', '-u', 'nobody', '--', "$dir/test_store");
exit($? == 0 ? 0 : 1);
