#!/usr/bin/perl

# projkey: "thread_pool=" runs the zone's database work in a pool the
# operator declares, instead of nginx's 32-thread default pool; a pool not
# declared fails "nginx -t" naming the file and line.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;

use Projkey::Test;
use Projkey::Admin;

###############################################################################

my $t = Projkey::Test->new()->plan(9);

$t->expect_errors(qr/\[emerg\].*(unknown thread pool "nosuch"|thread_pool=)/);

sub conf {
    my ($main, $param) = @_;
    return <<"EOF";
$main
http {
    projkey_zone keys:4m db=%%TESTDIR%%/keys.db sync=300ms$param;

    server {
        listen 127.0.0.1:%%PORT_0%%;

        location /admin/ {
            projkey_admin         keys;
            projkey_admin_user    \$http_x_user;
        }

        location /api/ {
            projkey keys;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;
        return 200 "ok\\n";
    }
}
EOF
}

# the threads of the (one) worker: its main thread and its pools'
sub threads {
    my ($pid) = $t->worker_pids;
    opendir my $dh, "/proc/$pid/task" or return -1;
    my $n = grep { /^\d+$/ } readdir $dh;
    closedir $dh;
    return $n;
}

###############################################################################

# a pool of its own, declared with nginx's thread_pool

$t->write_config(conf('thread_pool projkey threads=2;',
    ' thread_pool=projkey'))->run();

my $a = Projkey::Admin->new($t, user => 'alice');
my $r = $a->call('POST', 'keys', { name => 'pooled' });
is($r->{status}, 201, 'admin writes run in the named pool');
my $secret = $r->{json}{secret};
like($t->get('/api/', Authorization => "Bearer $secret"), qr/^HTTP\/1\.1 200/,
    'the key is in force');
is($a->call('PATCH', "keys/$r->{json}{key}{id}", { status => 'disabled' })
    ->{status}, 200, 'and a change');
like($t->get('/api/', Authorization => "Bearer $secret"), qr/ 401 /,
    'in force at once');
is(threads(), 3, 'the worker has its main thread and the 2 of "projkey"');
$t->stop();

# without it, nginx's default pool, as before

$t->write_config(conf('', ''))->run();
is($a->call('GET', 'keys')->{status}, 200, 'the default pool');
is(threads(), 33, 'the worker has the 32 threads of nginx\'s default pool');
$t->stop();

# a pool nobody declared

$t->write_config(conf('', ' thread_pool=nosuch'));
my ($rc, $out) = $t->nginx_t();
my @lines = split /\n/, $t->config;
my ($line) = grep { $lines[$_ - 1] =~ /^\s*projkey_zone\s/ } 1 .. @lines;
ok($rc != 0 && $out =~ /unknown thread pool "nosuch" in \S*nginx\.conf:$line\b/,
    'an undeclared pool: nginx -t names it, the file and the line')
    or diag($out);

$t->write_config(conf('', ' thread_pool='));
($rc, $out) = $t->nginx_t();
ok($rc != 0 && $out =~ /invalid parameter "thread_pool="/,
    'an empty pool name is refused') or diag($out);

###############################################################################

$t->done();
