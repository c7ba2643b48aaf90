#!/usr/bin/perl

# projkey: a secret key is never written anywhere, not even in part: not in
# error.log at info level, not in the access log, not in the database files.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Find;
use Test::More;

use Projkey::Test;

###############################################################################

my $t = Projkey::Test->new()->plan(11);

my @keys;
my ($id1, $key1) = $t->create_key('used');
my ($id2, $key2) = $t->create_key('disabled');
my ($id3, $key3) = $t->create_key('deleted');
push @keys, $key1, $key2, $key3;

die "projkey disable failed\n" if ($t->cli('disable', $id2))[0];

$t->write_config(<<'EOF')->run();
http {
    projkey_zone keys:4m db=%%TESTDIR%%/keys.db sync=200ms;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /api/ {
            projkey keys;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }

        location /opt/ {
            projkey keys optional;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;

        location / {
            return 200 "status=ok\n";
        }
    }
}

EOF

# keys made while nginx runs, one of them deleted while it runs
my ($id4, $key4) = $t->create_key('while running');
push @keys, $key4;
die "projkey delete failed\n" if ($t->cli('delete', $id3))[0];

# a key of another database: unknown here
my (undef, $key5) = $t->create_key('elsewhere',
    db => $t->testdir . '/other.db');
push @keys, $key5;

###############################################################################

select undef, undef, undef, 0.5;

like(call('/api/', "Bearer $key1"), qr/ 200 /, 'used key accepted');
like(call('/api/', "Bearer $key4"), qr/ 200 /, 'key made while running');
like(call('/api/', "Bearer $key2"), qr/ 401 /, 'disabled key rejected');
like(call('/api/', "Bearer $key3"), qr/ 401 /, 'deleted key rejected');
like(call('/api/', "Bearer $key5"), qr/ 401 /, 'unknown key rejected');

# malformed values that carry a whole key
call('/api/', "Bearer ${key1}x");
call('/api/', "Bearer $key1 $key4");
call('/api/', "Basic $key1");
call('/api/', "Bearer\t$key4");
call('/opt/', "Bearer ${key4}0");
call('/opt/', "Bearer $key2");

# and some traffic after a reload
$t->reload();
call('/api/', "Bearer $key1") for 1 .. 5;

# the database while nginx has it open (the WAL is still there)
my @found = scan(map { $t->testdir . "/keys.db$_" } '', '-wal', '-shm');
is("@found", '', 'no secret in keys.db, -wal, -shm while running');

$t->stop();

###############################################################################

@found = scan($t->testdir . '/error.log');
is("@found", '', 'no secret in error.log');

@found = scan($t->testdir . '/access.log');
is("@found", '', 'no secret in access.log');

@found = scan(map { $t->testdir . "/keys.db$_" } '', '-wal', '-shm');
is("@found", '', 'no secret in keys.db, -wal, -shm after stop');

my ($rc, $out, $err) = $t->cli('--json', 'list');
my @leak = grep { index($out . $err, substr($_, 11)) >= 0 } @keys;
ok($rc == 0 && !@leak, 'no secret in the CLI list');

# every file left in the test directory
my @files;
find({ wanted => sub { push @files, $File::Find::name if -f }, no_chdir => 1 },
    $t->testdir);
@found = scan(@files);
is("@found", '', 'no secret in any file of the test directory');

$t->done();

###############################################################################

sub call {
    my ($uri, $auth) = @_;
    return $t->get($uri, Authorization => $auth);
}

# "file: key n" for each key of which 16 characters in a row of its random
# body are found in a file: a truncated key in a log is a leak too
sub scan {
    my (@files) = @_;
    my @found;

    for my $f (@files) {
        my $data = $t->read_file($f);
        next unless length $data;

        KEY: for my $i (0 .. $#keys) {
            my $body = substr($keys[$i], 11);
            for my $at (0 .. length($body) - 16) {
                next unless index($data, substr($body, $at, 16)) >= 0;
                push @found, "$f: key $i";
                next KEY;
            }
        }
    }

    return @found;
}

###############################################################################
