#!/usr/bin/perl

# Runs the C unit tests of the SQLite key store (t/unit/test_store.c), which
# print TAP themselves; build them first with "make unit".

use strict;
use warnings;

use FindBin;

my $bin = "$FindBin::Bin/../build/test_store";

die "$bin is missing: run make unit first\n" unless -x $bin;

exec $bin or die "cannot exec $bin: $!\n";
