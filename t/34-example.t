#!/usr/bin/perl

# projkey: examples/nginx.conf as it is (only its placeholders, ports,
# paths and logs set for the test): a client's X-Projkey-* headers, in
# every case and underscore spelling, never reach the backend next to or
# instead of the module's values, whatever the nginx version (1.23+ joins
# repeated headers in $http_*, the backend's variables); the key is not
# passed on; the admin API answers behind its auth_basic.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use MIME::Base64 qw(encode_base64);
use Test::More;

use Projkey::Admin;
use Projkey::Test;

###############################################################################

my $t = Projkey::Test->new()->plan(7);

my ($id, $key) = $t->create_key('real name');

my ($rc, $hash) = $t->run_cmd('openssl', 'passwd', '-apr1', 'pw-of-admin');
chomp $hash;
die "openssl passwd failed\n" unless $rc == 0 && $hash =~ /^\$apr1\$/;
$t->write_file('htpasswd', "admin:$hash\n");

my $conf = $t->read_file($t->root . '/examples/nginx.conf');

# the harness writes load_module, user, pid, error_log and the temp paths
# itself; the access log goes to a file
$conf =~ s/^\s*#.*\n//mg;
$conf =~ s/^(?:load_module|user|pid|error_log) .*\n//mg;
$conf =~ s/^\s*\w+_temp_path .*\n//mg;
$conf =~ s{^(\s*access_log) /dev/stdout }{$1 %%TESTDIR%%/example.log }m;
$conf =~ s/127\.0\.0\.1:8080\b/127.0.0.1:%%PORT_0%%/g;
$conf =~ s/127\.0\.0\.1:8081\b/127.0.0.1:%%PORT_1%%/g;
$conf =~ s/\@RUN_DIR\@/%%TESTDIR%%/g;
$conf =~ s/\@PROJKEY_ROOT\@/$t->root/ge;

# the example's backend stands for an application that maps '-' and '_'
# alike (CGI, WSGI, PHP): it reads X_Projkey_Key_Id as X-Projkey-Key-Id
$conf =~ s/^(\s*)(server_name backend;\n)/$1$2$1underscores_in_headers on;\n/m
    or die "examples/nginx.conf: no backend server\n";

die "examples/nginx.conf: placeholders left: $1\n" if $conf =~ /(\@\w+\@)/;
die "examples/nginx.conf: ports left: $1\n" if $conf =~ /(:80[0-9][0-9]\b)/;

$t->write_config($conf)->run();

###############################################################################

# every spelling of each name: cases, underscores, a mix
sub variants {
    my ($b) = @_;
    my $n = "X-Projkey-$b";
    (my $u = $n) =~ tr/-/_/;
    (my $mix = $n) =~ s/-(\w+)$/_$1/;
    my $alt = join '', map { $_ % 2 ? uc substr($n, $_, 1)
        : lc substr($n, $_, 1) } 0 .. length($n) - 1;
    return ($n, lc $n, uc $n, $alt, $u, lc $u, uc $u, $mix);
}

my @names = map { variants($_) } qw(Origin Key-Id Key-Name Project);

my $real = "origin: API\nkey id: $id\nkey name: real name\nproject: default\n"
    . "Authorization header received: no\n";
my $none = "origin: \nkey id: \nkey name: \nproject: \n"
    . "Authorization header received: no\n";

# each spelling alone, then all of them at once, before and after the key;
# the backend's whole answer must be the expected one
sub check {
    my ($uri, $auth, $want) = @_;
    my @bad;
    my $n = 0;

    for my $set ((map { [$_] } @names), [@names]) {
        my @h = map { ($_ => "spoof-$_") } @$set;
        my @req = ++$n % 2 ? (@h, @$auth) : (@$auth, @h);
        my ($st, undef, $body) = Projkey::Test::parse_response(
            $t->get("$uri$n", @req));
        my $what = @$set == 1 ? $set->[0] : 'all';

        if (!defined $want) {
            push @bad, "$what: $st" unless $st == 401;
        } elsif ($st != 200 || $body ne "reasoning backend\n$want") {
            push @bad, "$what: $st $body";
        }
    }

    return join "\n", @bad;
}

is(check('/api/a', [Authorization => "Bearer $key"], $real), '',
    'api, valid key: the module values only, in every spelling');
is(check('/app/a', [Authorization => "Bearer $key"], $real), '',
    'app, valid key: the module values only, in every spelling');
is(check('/app/b', [], $none), '', 'app, no key: no identity at all');
is(check('/app/c', [Authorization => 'Bearer session'],
    $none =~ s/no\n$/yes\n/r), '',
    'app, the app\'s own bearer token: passed on, no identity at all');
is(check('/api/b', []), '', 'api, no key: 401');

# the admin API behind the example's auth_basic

my $api = Projkey::Admin->new($t, prefix => '/projkey/api/', headers =>
    [Authorization => 'Basic ' . encode_base64('admin:pw-of-admin', '')]);
is((map { $_->{id} } @{$api->list})[0], $id, 'admin API lists the key');
like($t->get('/projkey/api/keys'), qr/^HTTP\/1\.1 401 /,
    'admin API without a user: 401');

$t->done();

###############################################################################
