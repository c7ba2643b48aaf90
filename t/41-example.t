#!/usr/bin/perl

# projkey: the shipped example configuration, run as `make run` runs it
# (scripts/run-demo renders examples/nginx.conf and starts nginx), on ports
# of its own: the key check, the origin the backend sees, a client's
# X-Projkey-* headers dropped, the API keys page and its JSON API behind
# auth_basic, and one Cache-Control on the admin answers.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use MIME::Base64 qw(encode_base64);
use Test::More;
use Time::HiRes qw(sleep time);

use Projkey::Test;

###############################################################################

my $t = Projkey::Test->new()->plan(17);

my $d = $t->testdir;
my ($port, $backend) = ($t->port(0), $t->port(1));
my $root = $t->root;

my $pid = fork // die "fork: $!\n";
if ($pid == 0) {
    open STDOUT, '>', "$d/demo.stdout" or die;
    open STDERR, '>', "$d/demo.stderr" or die;
    $ENV{PROJKEY_DEMO_DIR} = "$d/demo";
    $ENV{PROJKEY_DEMO_PORT} = $port;
    $ENV{PROJKEY_DEMO_BACKEND_PORT} = $backend;
    exec "$root/scripts/run-demo";
    die "run-demo: $!\n";
}

# what the script prints before nginx takes over: the secret, the password
$t->wait_for(30, sub { $t->read_file('demo.stdout') =~ /Stop with Ctrl-C/ });
my $out = $t->read_file('demo.stdout');
my ($secret) = $out =~ /^\s+(sk-project-[0-9A-Za-z]{48})$/m;
my ($password) = $out =~ /user admin, password (\S+)/;

ok($secret && $password, 'run-demo prints the demo key and the password')
    or diag($out);
ok($t->wait_for(10, sub { $t->get('/', -port => $port) =~ /^HTTP/ }),
    'nginx answers on the demo port');

my $r = $t->get('/api/reasonings', -port => $port,
    Authorization => "Bearer $secret",
    'X-Projkey-Key-Id' => 'evil', 'X-Projkey-Origin' => 'evil');
like($r, qr/^HTTP\/1\.1 200 /, 'the demo key is accepted');
like($r, qr/^origin: API$/m, 'the backend sees origin API');
like($r, qr/^key id: [0-9A-Za-z]{12}$/m, 'and the real key id, not a client\'s');
like($r, qr/^Authorization header received: no$/m,
    'the Authorization header is not passed on');
like($t->get('/api/reasonings', -port => $port), qr/^HTTP\/1\.1 401 /,
    'no key: 401');

my $basic = 'Basic ' . encode_base64("admin:$password", '');
like($t->get('/projkey/', -port => $port, Authorization => $basic),
    qr/^HTTP\/1\.1 200 .*Content-Security-Policy: default-src 'self'/s,
    'the API keys page, behind auth_basic');
like($t->get('/projkey/api/keys', -port => $port), qr/^HTTP\/1\.1 401 /,
    'its API needs the password');
like($t->get('/projkey/api/keys', -port => $port,
    Authorization => 'Basic ' . encode_base64('mallory:x', '')),
    qr/^HTTP\/1\.1 401 /, 'a made-up Basic user is refused');

$r = $t->get('/projkey/api/keys', -port => $port, Authorization => $basic);
like($r, qr/^HTTP\/1\.1 200 .*"name":"Demo key"/s, 'the API lists the demo key');
is(count($r, 'Cache-Control'), 1, 'one Cache-Control on a list');

$r = $t->request('POST', '/projkey/api/keys', '{"name":"from the test"}',
    -port => $port, Authorization => $basic,
    'Content-Type' => 'application/json');
like($r, qr/^HTTP\/1\.1 201 .*"created_by":"admin"/s, 'created, by admin');
is(count($r, 'Cache-Control'), 1, 'one Cache-Control on a create');
like($r, qr/^Cache-Control: no-store\r$/m, 'and it is no-store');

kill 'TERM', $pid;
waitpid $pid, 0;
is($?, 0, 'the demo stops cleanly');
my $err = $t->read_file('demo.stderr');
my @alerts = grep { /\[(alert|emerg|crit)\]/ } split /\n/, $err;
is(join("\n", @alerts), '', 'no alerts in the demo\'s log');

###############################################################################

sub count {
    my ($resp, $name) = @_;
    my ($head) = split /\r\n\r\n/, $resp, 2;
    return scalar grep { /^\Q$name\E:/i } split /\r\n/, $head;
}

###############################################################################
