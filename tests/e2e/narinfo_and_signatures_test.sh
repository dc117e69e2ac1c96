#!/usr/bin/env bash
# Narinfos Nix writes parse and re-render byte-identical; keys from
# `larder keygen` work in Nix and Nix's keys and signatures work in Larder.
source "$(dirname "$0")/lib.sh"
: "${LARDER_TESTTOOL:?path to larder_testtool}"

root=$(small_corpus)
count=$(nix-store -qR "$root" | wc -l)

# 1. Re-rendering is byte-identical, for every compression Nix writes.
for c in none xz zstd bzip2; do
    nix copy --to "file://$TMP/rt-$c?compression=$c" "$root" 2>> "$TMP/nix.log"
    "$LARDER_TESTTOOL" narinfo-roundtrip "$TMP/rt-$c"/*.narinfo
done
pass "narinfos written by nix copy (none, xz, zstd, bzip2) re-render byte-identical"

# 2. A larder keygen key: files in Nix's format, secret key mode 0600.
"$LARDER" keygen larder-test-1 --secret-key "$TMP/sk" --public-key "$TMP/pk"
[ "$(stat -c %a "$TMP/sk")" = 600 ] || fail "secret key mode is $(stat -c %a "$TMP/sk")"
grep -qE '^larder-test-1:[A-Za-z0-9+/]{86}==$' "$TMP/sk" || fail "secret key format"
grep -qE '^larder-test-1:[A-Za-z0-9+/]{43}=$' "$TMP/pk" || fail "public key format"
[ "$(nix key convert-secret-to-public < "$TMP/sk")" = "$(cat "$TMP/pk")" ] || fail "Nix derives another public key"
if "$LARDER" keygen again --secret-key "$TMP/sk" --public-key "$TMP/pk2" 2>/dev/null; then fail "keygen overwrote a key"; fi
pass "larder keygen writes Nix's key format (secret 0600), Nix derives the same public key"

# 3. Larder signs narinfos; Nix accepts them with only that key trusted.
nix copy --to "file://$TMP/signed" "$root" 2>> "$TMP/nix.log"
"$LARDER_TESTTOOL" narinfo-sign "$TMP/sk" "$TMP/signed"/*.narinfo
nix store verify --store "file://$TMP/signed" --trusted-public-keys "$(cat "$TMP/pk")" \
    --sigs-needed 1 -r "$root" 2>> "$TMP/nix.log" || fail "nix store verify rejected Larder's signatures"
# ... and copies them into a fresh store with require-sigs on.
nix copy --from "file://$TMP/signed" --to "$TMP/chroot" --option require-sigs true \
    --option trusted-public-keys "$(cat "$TMP/pk")" "$root" 2>> "$TMP/nix.log" \
    || fail "nix copy with require-sigs rejected Larder's signatures"
[ "$(nix path-info --store "$TMP/chroot" -r "$root" | wc -l)" -eq "$count" ] || fail "chroot store incomplete"
# A different key of the same name must not verify.
"$LARDER" keygen larder-test-1 --secret-key "$TMP/sk-other" --public-key "$TMP/pk-other"
if nix store verify --store "file://$TMP/signed" --trusted-public-keys "$(cat "$TMP/pk-other")" \
    --sigs-needed 1 -r "$root" 2>/dev/null; then fail "a wrong key of the same name verified"; fi
pass "Larder's signatures verify with nix store verify and nix copy --from (require-sigs)"

# 4. Nix's own keys and signatures verify in Larder.
nix-store --generate-binary-cache-key nix-test-1 "$TMP/nix-sk" "$TMP/nix-pk"
nix copy --to "file://$TMP/nix-signed?secret-key=$TMP/nix-sk" "$root" 2>> "$TMP/nix.log"
"$LARDER_TESTTOOL" narinfo-verify "$TMP/nix-pk" "$TMP/nix-signed"/*.narinfo
if "$LARDER_TESTTOOL" narinfo-verify "$TMP/pk" "$TMP/nix-signed"/*.narinfo 2>/dev/null; then
    fail "Larder accepted a signature from an untrusted key"; fi
# `nix store sign` with a larder keygen key, verified by Larder and by Nix.
nix copy --to "file://$TMP/nix-sign" "$root" 2>> "$TMP/nix.log"
nix store sign --store "file://$TMP/nix-sign" --key-file "$TMP/sk" -r "$root"
"$LARDER_TESTTOOL" narinfo-verify "$TMP/pk" "$TMP/nix-sign"/*.narinfo
# A Nix-generated secret key is usable by Larder.
"$LARDER_TESTTOOL" narinfo-sign "$TMP/nix-sk" "$TMP/nix-sign"/*.narinfo
"$LARDER_TESTTOOL" narinfo-verify "$TMP/nix-pk" "$TMP/nix-sign"/*.narinfo
pass "signatures from nix copy ?secret-key= and nix store sign verify in Larder"
