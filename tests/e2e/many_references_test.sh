#!/usr/bin/env bash
# A path with 5,000 references (larger than any header Beast accepts when
# its narinfo rode in a header): pushed by `larder push` and by plain
# `nix copy`, its narinfo served whole and verifiable.
source "$(dirname "$0")/lib.sh"

start_server "$TMP/data"
export LARDER_SERVER=$URL LARDER_TOKEN=$ADMIN_TOKEN
printf 'machine 127.0.0.1 password %s\n' "$ADMIN_TOKEN" > "$TMP/netrc"
export NIX_CONFIG="$NIX_CONFIG"$'\n'"netrc-file = $TMP/netrc"
"$LARDER" cache create copied > /dev/null

# 5,000 small store paths and one file that refers to them all, from one evaluation.
salt="$$-$RANDOM"
top=$(nix-instantiate --read-write-mode --eval -E "let refs = builtins.genList (i: builtins.toFile \"ref-\${toString i}\" \"$salt \${toString i}\") 5000; in builtins.toFile \"top\" (builtins.concatStringsSep \"\\n\" refs)" | tr -d '"')
[ "$(nix-store -q --references "$top" | wc -l)" = 5000 ] || fail "the test path does not have 5000 references"
hash=$(basename "$top" | cut -c1-32)

"$LARDER" push main "$top" --json > "$TMP/push.json" 2> "$TMP/push.err" || fail "larder push: $(tail -3 "$TMP/push.err")"
[ "$(jq .pushed "$TMP/push.json")" = 5001 ] || fail "pushed $(jq .pushed "$TMP/push.json") of 5001"
expect_status 200 "narinfo of the top path" "$URL/main/$hash.narinfo"
[ "$(grep '^References:' "$TMP/body" | wc -w)" = 5001 ] || fail "the served narinfo does not list 5000 references"
KEY=$("$LARDER" cache info main --json | json_field public_key)
nix store verify --store "$URL/main" --trusted-public-keys "$KEY" --sigs-needed 1 "$top" 2>> "$TMP/nix.log" \
    || fail "nix store verify (larder push): $(tail -3 "$TMP/nix.log")"
pass "larder push of a path with 5000 references: stored, served whole, verifies"

nix copy --to "$URL/copied" "$top" 2>> "$TMP/nix.log" || fail "nix copy: $(tail -3 "$TMP/nix.log")"
refs=$(nix path-info --store "$URL/copied" --json "$top" | jq '.[0].references | length')
[ "$refs" = 5000 ] || fail "nix path-info through the cache sees $refs references"
KEY2=$("$LARDER" cache info copied --json | json_field public_key)
nix store verify --store "$URL/copied" --trusted-public-keys "$KEY2" --sigs-needed 1 "$top" 2>> "$TMP/nix.log" \
    || fail "nix store verify (nix copy): $(tail -3 "$TMP/nix.log")"
assert_no_5xx "$TMP/data/serve.log"
pass "nix copy of the same path: 5000 references through the narinfo PUT, verifies"
