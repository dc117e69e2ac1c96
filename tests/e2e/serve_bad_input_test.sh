#!/usr/bin/env bash
# Bad input to larder serve: each is a 4xx with a message saying what is
# wrong, nothing is stored, and the server keeps serving.
source "$(dirname "$0")/lib.sh"

cat > "$TMP/config.toml" <<TOML
[limits]
max_body = 1048576
[timeouts]
header = 2
body = 2
TOML
start_server "$TMP/data" --config "$TMP/config.toml"
printf 'machine 127.0.0.1 password %s\n' "$ADMIN_TOKEN" > "$TMP/netrc"
export NIX_CONFIG="$NIX_CONFIG"$'\n'"netrc-file = $TMP/netrc"
alive() { expect_status 200 "server alive after $1" "$URL/main/nix-cache-info"; }

# A real path, its NAR and narinfo as Nix would upload them.
p=$(nix-store --add "$LARDER_SOURCE/tests/data/make_invalid.py")
h=$(basename "$p" | cut -c1-32)
nix copy --to "file://$TMP/fc?compression=xz" "$p" 2>> "$TMP/nix.log"
narinfo=$TMP/fc/$h.narinfo
nar_url=$(sed -n 's/^URL: //p' "$narinfo")
put_nar() { expect_status 200 "PUT NAR" -X PUT --data-binary "@$TMP/fc/$nar_url" "$URL/main/$nar_url"; }

# 1. A narinfo whose NarHash does not match the uploaded NAR.
put_nar
sed 's/^NarHash: .*/NarHash: sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s/' "$narinfo" > "$TMP/wrong-hash.narinfo"
expect_status 400 "wrong NarHash" -X PUT --data-binary "@$TMP/wrong-hash.narinfo" "$URL/main/$h.narinfo"
body_has "but the uploaded NAR has NarHash"
sed 's/^NarSize: .*/NarSize: 12/' "$narinfo" > "$TMP/wrong-size.narinfo"
expect_status 400 "wrong NarSize" -X PUT --data-binary "@$TMP/wrong-size.narinfo" "$URL/main/$h.narinfo"
expect_status 404 "path after bad narinfos" "$URL/main/$h.narinfo"
pass "narinfo with a wrong NarHash or NarSize: 400, path not visible"

# 2. A narinfo naming a NAR that was never uploaded, and one with a missing reference.
sed "s|^URL: .*|URL: nar/$(printf '1%.0s' $(seq 52)).nar.xz|" "$narinfo" > "$TMP/no-nar.narinfo"
expect_status 400 "narinfo without NAR" -X PUT --data-binary "@$TMP/no-nar.narinfo" "$URL/main/$h.narinfo"
body_has "was not uploaded to cache 'main'"
sed "s|^References: .*|References: 0c5ykcv9xf0v3y41ic79ndw8ngq5s0qb-missing|" "$narinfo" > "$TMP/no-ref.narinfo"
expect_status 400 "missing reference" -X PUT --data-binary "@$TMP/no-ref.narinfo" "$URL/main/$h.narinfo"
body_has "its reference /nix/store/0c5ykcv9xf0v3y41ic79ndw8ngq5s0qb-missing is not in cache 'main'"
pass "narinfo without its NAR or with a missing reference: 400 saying which"

# 3. Malformed narinfos (every one of the invalid corpus).
for f in "$LARDER_SOURCE"/tests/data/invalid/*.narinfo; do
    expect_status 400 "$(basename "$f")" -X PUT --data-binary "@$f" "$URL/main/$h.narinfo"
    body_has "$(cat "${f%.narinfo}.expected")"
done
expect_status 400 "narinfo under another hash" -X PUT --data-binary "@$narinfo" "$URL/main/0c5ykcv9xf0v3y41ic79ndw8ngq5s0qb.narinfo"
pass "malformed narinfos: 400 with the parser's message"

# 4. NARs: invalid, corrupt, truncated (compressed stream cut, or the
#    connection dropped mid-body), and a file whose name hash does not match.
# Uploads are named by the sha256 of the file, as Nix names them.
named() { echo "$(nix-hash --type sha256 --flat --base32 "$1")$2"; }
for f in "$LARDER_SOURCE"/tests/data/invalid/{unsorted,dotdot-name,nonzero-padding,trailing-data}.nar; do
    expect_status 400 "$(basename "$f")" -X PUT --data-binary "@$f" "$URL/main/nar/$(named "$f" .nar)"
    body_has "invalid NAR: "
done
expect_status 400 "a name that is not the file's hash" -X PUT --data-binary "@$f" "$URL/main/nar/x.nar"
body_has "sha256 of the file"

size=$(stat -c %s "$TMP/fc/$nar_url")
head -c $((size / 2)) "$TMP/fc/$nar_url" > "$TMP/half.xz"
expect_status 400 "truncated xz" -X PUT --data-binary "@$TMP/half.xz" "$URL/main/nar/$(named "$TMP/half.xz" .nar.xz)"
body_has "truncated xz data"
printf 'garbage' > "$TMP/garbage"
expect_status 400 "garbage zstd" -X PUT --data-binary "@$TMP/garbage" "$URL/main/nar/$(named "$TMP/garbage" .nar.zst)"
expect_status 400 "name hash mismatch" -X PUT --data-binary "@$TMP/fc/$nar_url" "$URL/main/nar/$(printf '1%.0s' $(seq 52)).nar.xz"
body_has "the upload is truncated or corrupt"
# The client promises more bytes than it sends, then hangs up.
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
cut_name=$(named "$TMP/half.xz" .nar.xz)  # a name never stored
printf 'PUT /main/nar/%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n' "$cut_name" "$ADMIN_TOKEN" "$size" >&3
head -c $((size / 2)) "$TMP/fc/$nar_url" >&3
exec 3>&-
sleep 0.5
expect_status 404 "HEAD of a cut upload" -I "$URL/main/nar/$cut_name"
alive "bad NARs"
pass "invalid, truncated and corrupt NARs: 400 (or dropped), nothing recorded"

# 5. Paths that try to climb out, unknown caches, unknown routes.
for path in '/main/../main/nix-cache-info' '/main/%2e%2e/main/nix-cache-info' '/main/nar/%2e%2e' \
            '/main/log/..%2f..%2fetc%2fpasswd' '/main//nix-cache-info' '/main/nar/a%00b'; do
    got=$(status --path-as-is "$URL$path")
    [ "$got" = 400 ] || fail "$path: expected 400, got $got"
done
expect_status 400 "bad hash" "$URL/main/not-a-hash.narinfo"
expect_status 404 "unknown cache (admin)" "$URL/nope/nix-cache-info"
body_has "no cache named 'nope'"
got=$(status_anon "$URL/nope/nix-cache-info"); [ "$got" = 401 ] || fail "anonymous unknown cache: $got"
got=$(status_anon "$URL/main/nix-cache-info"); [ "$got" = 401 ] || fail "anonymous private cache: $got"
expect_status 404 "unknown route" "$URL/main/whatever"
expect_status 404 "unknown narinfo" "$URL/main/0c5ykcv9xf0v3y41ic79ndw8ngq5s0qb.narinfo"
got=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer lt_not-a-real-token" "$URL/main/nix-cache-info")
[ "$got" = 401 ] || fail "bad token: $got"
pass "'..' and %2e%2e: 400; unknown cache: 404 (401 without a token); bad token: 401"

# 6. A body over the limit (1 MiB here).
head -c 2000000 /dev/zero > "$TMP/big"
expect_status 413 "body over limit" -X PUT --data-binary "@$TMP/big" "$URL/main/log/big.drv"
body_has "over the limit"
expect_status 404 "oversized log stored" "$URL/main/log/big.drv"
alive "oversized body"
pass "body over the limit: 413, nothing stored"

# 7. A slow client holding a connection open is dropped after the header timeout.
exec 4<>"/dev/tcp/127.0.0.1/$PORT"
printf 'GET /main/nix-cache-info HTTP/1.1\r\nHost: x\r\n' >&4   # never finishes its headers
alive "a slow client connected"
start=$(date +%s)
if timeout 10 cat <&4 > /dev/null; then :; fi
elapsed=$(( $(date +%s) - start ))
[ "$elapsed" -le 5 ] || fail "slow client kept for ${elapsed}s"
exec 4<&-
alive "slow client"
pass "slow client dropped after the header timeout (${elapsed}s); server kept serving"

# 8. After all that, a correct upload still works.
nix copy --to "$URL/main" "$p" 2>> "$TMP/nix.log" || fail "nix copy after bad input"
expect_status 200 "good narinfo" "$URL/main/$h.narinfo"
assert_no_5xx "$TMP/data/serve.log"
pass "a correct push works afterwards; no 5xx in the server log"
stop_server
