#!/usr/bin/perl

# Runs the C unit tests of the contract's text and times and of the admin
# API's JSON (t/unit/test_text.c), which print TAP themselves; build them
# first with "make unit".

use strict;
use warnings;

use FindBin;

my $bin = "$FindBin::Bin/../build/test_text";

die "$bin is missing: run make unit first\n" unless -x $bin;

exec $bin or die "cannot exec $bin: $!\n";
