#!/usr/bin/perl

# The C unit tests of the key store (t/unit/test_store.c) on PostgreSQL:
# the tests of the store interface that t/01-unit-store.t runs on SQLite,
# on a private PostgreSQL (t/lib/Projkey/Pg.pm), then those of what only
# PostgreSQL has (gap-free revisions under concurrent writers, NOTIFY on
# commit only).  Build them first with "make unit".

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Projkey::Pg;

my $bin = "$FindBin::Bin/../build/test_store";

die "$bin is missing: run make unit first\n" unless -x $bin;

my $pg = Projkey::Pg->new();

# system, not exec: the server must be stopped after
$ENV{PROJKEY_TEST_PG_URI} = $pg->uri;
system($bin);
my $rc = $? == 0 ? 0 : 1;

$pg->stop();
exit $rc;
