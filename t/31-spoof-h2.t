#!/usr/bin/perl

# projkey: client-made X-Projkey-* headers, in every case and underscore
# variant, on protected, optional and unprotected locations, over HTTP/1.1
# and HTTP/2: the backend never sees a client-made value when the
# configuration sets the variables with proxy_set_header.  The backend is
# an nginx with underscores_in_headers on, whose $http_x_projkey_origin
# matches X-Projkey-Origin and X_Projkey_Origin alike, as a CGI-style
# application would.
#
# Also shown: with underscores_in_headers on at the front, X_Projkey_*
# headers are forwarded as they are unless the configuration clears them
# too (proxy_set_header X_Projkey_Origin "";).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;

use Projkey::Test;

###############################################################################

my $t = Projkey::Test->new()->has(qw/http_v2/)->plan(15);

# "listen ... http2" is deprecated (a warning) from nginx 1.25.1 on, which
# has "http2 on;" instead
my ($h2listen, $h2on) = $t->nginx_version >= 1025001
    ? ('', "\n        http2 on;") : (' http2', '');

my ($id, $key) = $t->create_key('real name');

my $locations = <<'EOF';
        location /api/ {
            projkey keys;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }

        location /opt/ {
            projkey keys optional;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }

        location /off/ {
            projkey off;
            proxy_pass http://127.0.0.1:%%PORT_1%%;
        }
EOF

# proxy_set_header at a level replaces all those of the levels above: the
# X-Projkey-* lines must be repeated next to the X_Projkey_* ones
my $clear = <<'EOF';
        proxy_set_header X-Projkey-Origin   $projkey_origin;
        proxy_set_header X-Projkey-Key-Id   $projkey_key_id;
        proxy_set_header X-Projkey-Key-Name $projkey_key_name;
        proxy_set_header X-Projkey-Project  $projkey_project;
        proxy_set_header X_Projkey_Origin   "";
        proxy_set_header X_Projkey_Key_Id   "";
        proxy_set_header X_Projkey_Key_Name "";
        proxy_set_header X_Projkey_Project  "";
EOF

$t->write_config(<<"EOF")->run();
http {
    projkey_zone keys:4m db=%%TESTDIR%%/keys.db sync=200ms;

    proxy_set_header X-Projkey-Origin   \$projkey_origin;
    proxy_set_header X-Projkey-Key-Id   \$projkey_key_id;
    proxy_set_header X-Projkey-Key-Name \$projkey_key_name;
    proxy_set_header X-Projkey-Project  \$projkey_project;

    # the defaults (underscores_in_headers off), HTTP/1.1 and HTTP/2
    server {
        listen 127.0.0.1:%%PORT_0%%;
$locations    }

    server {
        listen 127.0.0.1:%%PORT_2%%$h2listen;$h2on
$locations    }

    # underscores allowed, the X_Projkey_* names cleared as well
    server {
        listen 127.0.0.1:%%PORT_3%%;
        underscores_in_headers on;
$clear$locations    }

    server {
        listen 127.0.0.1:%%PORT_4%%$h2listen;$h2on
        underscores_in_headers on;
$clear$locations    }

    # underscores allowed and nothing more: the pitfall
    server {
        listen 127.0.0.1:%%PORT_5%%;
        underscores_in_headers on;
$locations    }

    server {
        listen 127.0.0.1:%%PORT_1%%;
        underscores_in_headers on;
        access_log %%TESTDIR%%/backend.log;

        location / {
            return 200 "origin=[\$http_x_projkey_origin] id=[\$http_x_projkey_key_id] name=[\$http_x_projkey_key_name] project=[\$http_x_projkey_project] status=ok\\n";
        }
    }
}

EOF

###############################################################################

my @base = qw(Origin Key-Id Key-Name Project);

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

my @names = map { variants($_) } @base;
my %value = map { $_ => "spoof-$_" } @names;

my $real = qr/^origin=\[API\] id=\[\Q$id\E\] name=\[real name\] project=\[default\] status=ok$/m;
my $empty = qr/^origin=\[\] id=\[\] name=\[\] project=\[\] status=ok$/m;

my $n = 0;
my (@rejected, @bad);

# each name alone, then all of them at once
sub matrix {
    my ($label, $send, @names) = @_;
    my (@req, @want);

    for my $set ((map { [$_] } @names), [@names]) {
        my @h = map { ($_ => $value{$_}) } @$set;
        my $what = @$set == 1 ? $set->[0] : 'all';

        for my $case (
            ['/api/', [Authorization => "Bearer $key"], 200, $real],
            ['/api/', [], 401],
            ['/api/', [Authorization => 'Bearer sk-project-x'], 401],
            ['/opt/', [], 200, $empty],
            ['/opt/', [Authorization => "Bearer $key"], 200, $real],
            ['/opt/', [Authorization => 'Bearer other'], 200, $empty],
            ['/off/', [], 200, $empty],
            ['/off/', [Authorization => "Bearer $key"], 200, $empty],
        ) {
            my ($loc, $auth, $want, $re) = @$case;
            my $uri = sprintf '%ss%05d', $loc, ++$n;
            # the spoofed headers before and after Authorization
            push @req, [$uri, $n % 2 ? (@h, @$auth) : (@$auth, @h)];
            push @want, ["$label $uri $what" . (@$auth ? ' +auth' : ''),
                $want, $re];
            push @rejected, $uri if $want == 401;
        }
    }

    my @res = $send->(@req);
    my @bad;

    for my $i (0 .. $#want) {
        my ($tag, $want, $re) = @{$want[$i]};
        my ($st, $body) = @{$res[$i] // [0, 'no answer']};

        if ($st != $want) {
            push @bad, "$tag: $st, not $want";
        } elsif ($re && $body !~ $re) {
            push @bad, "$tag: $body";
        } elsif ($body =~ /spoof/) {
            push @bad, "$tag: spoof seen: $body";
        }
    }

    return join("\n", @bad);
}

# HTTP/1.1, one connection a request: ([status, body], ...)
sub h1 {
    my ($port) = @_;
    return sub {
        map {
            my ($uri, @h) = @$_;
            my ($st, undef, $body) = Projkey::Test::parse_response(
                $t->get($uri, @h, -port => $port));
            [$st, $body];
        } @_;
    };
}

# HTTP/2 prior knowledge: a curl a request (curl 7.88 cannot reuse an h2c
# connection across --next), 16 at a time
sub h2 {
    my ($port) = @_;
    return sub {
        my @reqs = @_;
        my @res;
        while (my @chunk = splice @reqs, 0, 16) {
            my @fh;
            for my $req (@chunk) {
                my ($uri, @h) = @$req;
                my @args = ('-sS', '--http2-prior-knowledge', '--max-time',
                    '20', '-w', '\n@@ %{http_version} %{http_code}\n');
                while (my ($k, $v) = splice @h, 0, 2) {
                    push @args, '-H', "$k: $v";
                }
                open my $fh, '-|', 'curl', @args,
                    "http://127.0.0.1:$port$uri" or die "curl: $!\n";
                push @fh, $fh;
            }
            for my $fh (@fh) {
                local $/;
                my $out = <$fh> // '';
                close $fh;
                if ($out =~ /^(.*)\n@@ (\S+) (\d+)\n$/s) {
                    push @res, $2 eq '2' ? [$3, $1] : [-2, "HTTP version $2"];
                } else {
                    push @res, [0, "curl: $out"];
                }
            }
        }
        return @res;
    };
}

is(matrix('h1', h1($t->port(0)), @names), '', 'HTTP/1.1, defaults');
is(matrix('h2', h2($t->port(2)), @names), '', 'HTTP/2, defaults');

# with underscores_in_headers on, the names spelt with '-' only or '_' only
# are cleared; a mixed spelling (X-Projkey_Origin) is another header name
# to nginx but the same variable to the backend: below
my @plain = grep { !/-.*_|_.*-/ } @names;
is(matrix('h1u', h1($t->port(3)), @plain), '',
    'HTTP/1.1, underscores on, X_Projkey_* cleared');
is(matrix('h2u', h2($t->port(4)), @plain), '',
    'HTTP/2, underscores on, X_Projkey_* cleared');
my ($st, $body) = @{(h1($t->port(3))->(['/off/mixed',
    'X-Projkey_Origin' => 'API']))[0]};
like($body, qr/origin=\[API\]/,
    'underscores on: a mixed spelling X-Projkey_Origin gets through '
    . '(documented: keep underscores_in_headers off)');

# the pitfall: underscores_in_headers on without clearing the X_Projkey_*
# names lets a client's X_Projkey_Origin through where the module sets no
# value ($projkey_origin empty: proxy_set_header sends no header at all)

($st, $body) = @{(h1($t->port(5))->(['/off/pitfall',
    X_Projkey_Origin => 'API']))[0]};
like($body, qr/origin=\[API\]/,
    'underscores on, nothing cleared: X_Projkey_Origin reaches the backend '
    . '(documented pitfall)');

# with a valid key the front sends the module's X-Projkey-* and passes the
# client's X_Projkey_* after them: two headers that are one variable to
# the backend.  nginx before 1.23.0 gives the first in $http_*, so the
# backend shows the module's values; 1.23.0 joins repeated headers (", "),
# so it shows both.  An application may take either: only the default
# underscores_in_headers off (above) keeps the client's value out.
($st, $body) = @{(h1($t->port(5))->(['/api/pitfall',
    X_Projkey_Origin => 'API', X_Projkey_Key_Id => 'evil',
    Authorization => "Bearer $key"]))[0]};
if ($t->nginx_version >= 1023000) {
    like($body, qr/origin=\[API, API\] id=\[\Q$id\E, evil\]/,
        'underscores on, nothing cleared: with a valid key the backend '
        . 'gets the module values and the client\'s (documented pitfall)');
} else {
    like($body, qr/origin=\[API\] id=\[\Q$id\E\]/,
        'underscores on, nothing cleared: with a valid key the module '
        . 'values come first (documented pitfall)');
}
($st, $body) = @{(h1($t->port(0))->(['/off/default',
    X_Projkey_Origin => 'API']))[0]};
like($body, $empty, 'default underscores_in_headers off: dropped at the front');

# the key itself is hidden in every mode

($st, $body) = @{(h2($t->port(2))->(['/api/h2key', Authorization => "Bearer $key"]))[0]};
is($st, 200, 'h2: valid key');
($st, $body) = @{(h2($t->port(2))->(['/api/h2dup', Authorization => "Bearer $key",
    Authorization => "Bearer $key"]))[0]};
ok($st == 400 || $st == 401, "h2: duplicate Authorization: $st");
push @rejected, '/api/h2dup';
($st, $body) = @{(h2($t->port(2))->(['/api/h2tab', Authorization => "Bearer\t$key"]))[0]};
is($st, 401, 'h2: tab separator');
push @rejected, '/api/h2tab';
($st, $body) = @{(h2($t->port(2))->(['/api/h2comma',
    Authorization => "Bearer $key, Bearer $key"]))[0]};
is($st, 401, 'h2: comma-joined');
push @rejected, '/api/h2comma';

###############################################################################

$t->stop();

my %seen = map { $_ => 1 } $t->read_file('backend.log') =~ m{"[A-Z]+ (\S+)}g;
my @through = grep { $seen{$_} } @rejected;
is("@through", '', 'no rejected request reached the backend');
ok(scalar(keys %seen) > 500, 'accepted requests did (' . keys(%seen) . ')');

# nginx core logs the raw header of an h2 request with two Authorization
# headers at info ("client sent duplicate header line", see 30-attacks.t)
my $core = qr/\[info\] .* client sent duplicate header line/;
my @leak = grep { index($_->[1], substr($key, 11, 16)) >= 0 }
    map { my $f = $_; map { [$f, $_] } split /\n/, $t->read_file($f) }
    qw(error.log access.log backend.log);
is(join("\n", map { "$_->[0]: $_->[1]" } grep { $_->[1] !~ $core } @leak),
    '', 'no key in error.log, access.log, backend.log (but core 400 lines)');

$t->done();

###############################################################################
