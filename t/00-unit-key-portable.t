#!/usr/bin/perl

# Runs the C unit tests of the key format (t/unit/test_key.c) built with
# -DPROJKEY_PORTABLE: the word-at-a-time alphabet check that a build
# without SSE2 runs; build them first with "make unit".

use strict;
use warnings;

use FindBin;

my $bin = "$FindBin::Bin/../build/test_key_portable";

die "$bin is missing: run make unit first\n" unless -x $bin;

exec $bin or die "cannot exec $bin: $!\n";
