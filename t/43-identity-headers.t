#!/usr/bin/perl

# projkey: projkey_identity_headers.  With it on, the module itself sets
# X-Projkey-Origin, -Key-Id, -Key-Name and -Project of an accepted key on
# the request passed to any upstream, and removes every client header of
# these names in any spelling (case, '-' or '_'), accepted or not, also
# where "projkey off".  Real backends that echo what they receive, in
# order and with repeats (t/lib/Projkey/Backend.pm): HTTP (proxy),
# FastCGI, uwsgi and SCGI, and an nginx over HTTP/2 for grpc_pass.  Off,
# the client's headers pass untouched: the operator must clear them then
# (t/13, t/31).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;

use Projkey::Backend;
use Projkey::Test;

###############################################################################

my $t = Projkey::Test->new()->has(qw/http_v2/)->plan(40);

# "listen ... http2" is deprecated (a warning) from nginx 1.25.1 on, which
# has "http2 on;" instead
my ($h2listen, $h2on) = $t->nginx_version >= 1025001
    ? ('', "\n        http2 on;") : (' http2', '');

# a name that is UTF-8, with spaces
my $name = "caf\xc3\xa9 \xd0\xba\xd0\xbb\xd1\x8e\xd1\x87 1";
my ($id, $key) = $t->create_key($name);
my ($bid, $bkey) = $t->create_key('to be broken');

Projkey::Backend->start(http => $t->port(3));
Projkey::Backend->start(fastcgi => $t->port(4));
Projkey::Backend->start(uwsgi => $t->port(5));
Projkey::Backend->start(scgi => $t->port(6));

my $locations = <<'EOF';
        projkey_identity_headers on;

        location /api/ {
            projkey keys;
            proxy_pass http://127.0.0.1:%%PORT_3%%;
        }

        location /opt/ {
            projkey keys optional;
            proxy_pass http://127.0.0.1:%%PORT_3%%;
        }

        location /off/ {
            projkey off;
            proxy_pass http://127.0.0.1:%%PORT_3%%;
        }

        location /plain/ {
            projkey keys optional;
            projkey_identity_headers off;
            proxy_pass http://127.0.0.1:%%PORT_3%%;
        }

        location /fcgi/ {
            projkey keys optional;
            fastcgi_pass 127.0.0.1:%%PORT_4%%;
        }

        location /uwsgi/ {
            projkey keys optional;
            uwsgi_pass 127.0.0.1:%%PORT_5%%;
        }

        location /scgi/ {
            projkey keys optional;
            scgi_pass 127.0.0.1:%%PORT_6%%;
        }

        location /grpc/ {
            projkey keys optional;
            grpc_pass grpc://127.0.0.1:%%PORT_7%%;
        }

        # a 401 that reaches a backend all the same
        location /login/ {
            projkey keys;
            error_page 401 = @login;
            proxy_pass http://127.0.0.1:%%PORT_3%%;
        }

        location @login {
            proxy_pass http://127.0.0.1:%%PORT_3%%;
        }

        location /any/ {
            satisfy any;
            allow 127.0.0.1;
            deny all;
            projkey keys;
            proxy_pass http://127.0.0.1:%%PORT_3%%;
        }

        # internal redirects: the access phase runs again
        location /tf/ {
            projkey keys;
            try_files /nonexistent @again;
        }

        location @again {
            projkey keys;
            proxy_pass http://127.0.0.1:%%PORT_3%%;
        }

        location /ep/ {
            projkey keys;
            proxy_intercept_errors on;
            proxy_set_header X-Echo-Status 404;
            error_page 404 = @again;
            proxy_pass http://127.0.0.1:%%PORT_3%%;
        }

        location /fep/ {
            projkey keys;
            fastcgi_intercept_errors on;
            fastcgi_param ECHO_STATUS 404;
            error_page 404 = @fagain;
            fastcgi_pass 127.0.0.1:%%PORT_4%%;
        }

        location @fagain {
            projkey keys;
            fastcgi_pass 127.0.0.1:%%PORT_4%%;
        }

        # the key hidden only in the second location, after the list was
        # copied in the first one
        location /hide/ {
            projkey keys;
            projkey_hide_key off;
            try_files /nonexistent @hide;
        }

        location @hide {
            projkey keys;
            proxy_pass http://127.0.0.1:%%PORT_3%%;
        }

        # into a location where it is off: what the first one set stays
        location /tooff/ {
            projkey keys;
            try_files /nonexistent @off;
        }

        location @off {
            projkey keys;
            projkey_identity_headers off;
            proxy_pass http://127.0.0.1:%%PORT_3%%;
        }
EOF

$t->write_config(<<"EOF")->run();
http {
    projkey_zone keys:4m db=%%TESTDIR%%/keys.db sync=200ms;

    underscores_in_headers on;
    root %%TESTDIR%%;

    server {
        listen 127.0.0.1:%%PORT_0%%;
$locations    }

    server {
        listen 127.0.0.1:%%PORT_1%%$h2listen;$h2on
$locations    }

    # the grpc backend: an nginx over HTTP/2 that shows the four variables
    server {
        listen 127.0.0.1:%%PORT_7%%$h2listen;$h2on
        underscores_in_headers on;

        location / {
            return 200 "X-Projkey-Origin: \$http_x_projkey_origin\\nX-Projkey-Key-Id: \$http_x_projkey_key_id\\nX-Projkey-Key-Name: \$http_x_projkey_key_name\\nX-Projkey-Project: \$http_x_projkey_project\\n";
        }
    }
}

EOF

###############################################################################

# every spelling of each name: cases, underscores, a mix
my @names = map {
    my $n = "X-Projkey-$_";
    (my $u = $n) =~ tr/-/_/;
    (my $mix = $n) =~ s/-(\w+)$/_$1/;
    my $alt = join '', map { $_ % 2 ? uc substr($n, $_, 1)
        : lc substr($n, $_, 1) } 0 .. length($n) - 1;
    ($n, lc $n, uc $n, $alt, $u, lc $u, uc $u, $mix);
} qw(Origin Key-Id Key-Name Project);

# all of them, twice
my @spoof = map { ($_ => 'spoof') } @names, @names;

my $want = join '', map { "$_\n" } 'x-projkey-origin=API',
    "x-projkey-key-id=$id", "x-projkey-key-name=$name",
    'x-projkey-project=default';

# the X-Projkey-* lines of a backend's answer, names folded, in order
sub ident {
    my ($body) = @_;
    my $out = '';

    for (split /\n/, $body // '') {
        my ($k, $v) = /^([^:]+): ?(.*)$/ or next;
        $k = lc $k;
        $k =~ tr/_/-/;
        $k =~ s/^http-//;
        next unless $k =~ /^x-projkey-/;
        next if $v eq '';           # the grpc backend's empty variables
        $out .= "$k=$v\n";
    }

    return $out;
}

# ([status, body], ...) for [uri, headers...] over HTTP/1.1
sub h1 {
    map {
        my ($uri, @h) = @$_;
        my ($st, undef, $body) = Projkey::Test::parse_response(
            $t->get($uri, @h));
        [$st, $body];
    } @_;
}

# the same over HTTP/2 (prior knowledge), a curl a request, 8 at a time
sub h2 {
    my @reqs = @_;
    my @res;

    while (my @chunk = splice @reqs, 0, 8) {
        my @fh;
        for my $req (@chunk) {
            my ($uri, @h) = @$req;
            my @args = ('-sS', '--http2-prior-knowledge', '--max-time', '20',
                '-w', '\n@@ %{http_version} %{http_code}\n');
            while (my ($k, $v) = splice @h, 0, 2) {
                push @args, '-H', "$k: $v";
            }
            open my $fh, '-|', 'curl', @args,
                'http://127.0.0.1:' . $t->port(1) . $uri or die "curl: $!\n";
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
}

# each case: [label, uri, headers, status, identity lines]
my @cases;

for my $loc (qw(api opt fcgi uwsgi scgi grpc)) {
    push @cases, ["$loc, accepted key", "/$loc/a",
        ['X-Keep' => 'a', @spoof, Authorization => "Bearer $key", @spoof,
            'X-Keep' => 'b'], 200, $want];
}

for my $loc (qw(opt fcgi uwsgi scgi grpc)) {
    push @cases,
        ["$loc, no key", "/$loc/b", [@spoof], 200, ''],
        ["$loc, another bearer token", "/$loc/c",
            [@spoof, Authorization => 'Bearer foo'], 200, ''],
        ["$loc, Basic", "/$loc/d",
            [Authorization => 'Basic dXNlcjpwYXNz', @spoof], 200, ''];
}

push @cases,
    ['off, no key', '/off/a', [@spoof], 200, ''],
    ['off, a valid key gives no identity', '/off/b',
        [@spoof, Authorization => "Bearer $key"], 200, ''],
    ['401 to error_page, no key', '/login/a', [@spoof], 200, ''],
    ['401 to error_page, unknown key', '/login/b',
        [Authorization => 'Bearer sk-project-' . 'a' x 48, @spoof], 200, ''],
    ['satisfy any, no key', '/any/a', [@spoof], 200, ''],
    ['satisfy any, accepted', '/any/b',
        [@spoof, Authorization => "Bearer $key"], 200, $want],
    ['try_files to a named location', '/tf/a',
        [@spoof, Authorization => "Bearer $key"], 200, $want],
    ['try_files, no spoof', '/tf/b',
        [Authorization => "Bearer $key"], 200, $want],
    ['error_page after a proxied 404', '/ep/a',
        [@spoof, Authorization => "Bearer $key"], 200, $want],
    ['error_page after a FastCGI 404', '/fep/a',
        [@spoof, Authorization => "Bearer $key"], 200, $want],
    ['redirect to a location where it is off', '/tooff/a',
        [@spoof, Authorization => "Bearer $key"], 200, $want];

sub check {
    my ($proto, $res) = @_;
    my @bad;

    for my $i (0 .. $#cases) {
        my ($label, $uri, $h, $st, $id) = @{$cases[$i]};
        my ($gst, $body) = @{$res->[$i] // [0, 'no answer']};

        if ($gst != $st) {
            push @bad, "$label: $gst, not $st: $body";
        } elsif (ident($body) ne $id) {
            push @bad, "$label: got\n" . ident($body);
        }
    }

    return join "\n", @bad;
}

my @reqs = map { [$_->[1], @{$_->[2]}] } @cases;

my @r1 = h1(@reqs);
my @r2 = h2(@reqs);

for my $i (0 .. $#cases) {
    my ($label, $uri, $h, $st, $id) = @{$cases[$i]};
    my $ok = ($r1[$i][0] == $st && ident($r1[$i][1]) eq $id);
    ok($ok, "h1: $label") or diag("$r1[$i][0]\n$r1[$i][1]");
}

is(check('h2', \@r2), '', 'the same over HTTP/2');

# the other headers are left as they were, in order; the key is hidden
my ($st, $body) = @{$r1[0]};
like($body, qr/^Host: 127\.0\.0\.1:\d+\n.*^X-Keep: a\nX-Keep: b\n(?!.*Authorization)/ms,
    'proxy: other headers kept in order, Authorization hidden');

###############################################################################

# off: the client's headers pass as they are

($st, $body) = @{(h1(['/plain/a', 'X-Projkey-Origin' => 'API',
    'X_Projkey_Key_Id' => 'evil', Authorization => "Bearer $key"]))[0]};
is(ident($body), "x-projkey-origin=API\nx-projkey-key-id=evil\n",
    'off: client headers untouched (the operator clears them)');

# projkey_hide_key in a second location finds the Authorization header in
# the list the first one copied

($st, $body) = @{(h1(['/hide/a', @spoof, Authorization => "Bearer $key"]))[0]};
is(ident($body), $want, 'hide after a redirect: identity');
unlike($body, qr/Authorization|\Q$key\E/i,
    'hide after a redirect: the key hidden from the copied list');

###############################################################################

# a name changed by hand to hold a line break is never sent: the zone
# takes no key whose strings cannot be header values; it is rejected

$t->run_cmd('sqlite3', $t->db, "UPDATE keys SET name = 'x' || char(13, 10)"
    . " || 'X-Projkey-Origin: forged' WHERE id = '$bid'");

my $ok = $t->wait_for(5, sub {
    (h1(['/api/broken', Authorization => "Bearer $bkey"]))[0][0] == 401;
});
ok($ok, 'a name with CR LF: the key is rejected');

($st, $body) = @{(h1(['/opt/broken', Authorization => "Bearer $bkey"]))[0]};
is($st, 401, 'a name with CR LF: rejected where optional');
like($t->error_log, qr/\[error\].*the key of change \d+ has a control character or invalid UTF-8 in its id, name or project \(a change by hand\?\) and is rejected/,
    'logged at error, without the name');

###############################################################################

$t->done();

###############################################################################
