#!/usr/bin/env bash
# radosgw throttling (503 SlowDown, from tests/tools/delay_proxy.cpp in front
# of it) for a while: pushes and substitutions take longer but succeed, and
# no client sees an error. Storage 20 ms away, as a real S3 would be.
source "$(dirname "$0")/lib.sh"

ceph_s3_start "$TMP/ceph" || fail "could not start radosgw"
ceph_s3_proxy proxy 20 --slowdown-file "$TMP/slowdown" --stats-file "$TMP/proxy.stats"
cat > "$TMP/s3.toml" <<TOML
storage = "s3://$S3_BUCKET/slowdown?endpoint=$proxy&region=$S3_REGION"
[s3]
access_key_id = "$S3_ACCESS_KEY"
secret_access_key = "$S3_SECRET_KEY"
TOML
chmod 600 "$TMP/s3.toml"
start_server "$TMP/data" --config "$TMP/s3.toml"
KEY=$(curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/api/v1/caches/main" | json_field public_key)
root=$(bash "$LARDER_SOURCE/tests/e2e/make_corpus.sh" small slowdown-$$)
mapfile -t closure < <(nix-store -qR "$root")
slowdowns() { awk '{print $4}' "$TMP/proxy.stats" 2>/dev/null || echo 0; }
throttle_for() {  # SECONDS: S3 answers SlowDown from now on, for that long
    touch "$TMP/slowdown"
    (sleep "$1"; rm -f "$TMP/slowdown") &
    THROTTLE_PID=$!
}

# 1. A push while S3 throttles for 1.5 s.
throttle_for 1.5
"$LARDER" push main "$root" --server "$URL" --token "$ADMIN_TOKEN" > "$TMP/push.out" 2>&1 \
    || { cat "$TMP/push.out"; fail "the push failed while S3 throttled"; }
wait "$THROTTLE_PID"
before=$(slowdowns)
[ "$before" -gt 0 ] || fail "the push never met a SlowDown (the test would prove nothing)"
pass "larder push of ${#closure[@]} paths succeeded through $before SlowDown answers"

# 2. Substitution while S3 throttles for 1.5 s (narinfos come from the
# database; every NAR is read from S3).
nix-store --delete "${closure[@]}" > /dev/null 2>&1 || fail "could not delete the closure"
printf 'machine 127.0.0.1 password %s\n' "$ADMIN_TOKEN" > "$TMP/netrc"
throttle_for 1.5
nix-store -r "$root" --option substituters "$URL/main" --option trusted-public-keys "$KEY" \
    --option netrc-file "$TMP/netrc" \
    > /dev/null 2>> "$TMP/nix.log" || fail "substitution failed while S3 throttled: $(tail -3 "$TMP/nix.log")"
wait "$THROTTLE_PID"
for p in "${closure[@]}"; do [ -e "$p" ] || fail "$p was not substituted"; done
[ "$(slowdowns)" -gt "$before" ] || fail "the substitution never met a SlowDown"
# (Nix's own database being busy, while other tests run Nix, is retried by
# Nix and says nothing about the server.)
errors=$(grep -i 'error' "$TMP/nix.log" | grep -v "SQLite database '.*' is busy" || true)
[ -z "$errors" ] || fail "Nix reported errors: $(head -3 <<< "$errors")"
assert_no_5xx "$TMP/data/serve.log"
pass "substituted ${#closure[@]} paths through $(( $(slowdowns) - before )) SlowDown answers, no client-visible error"
