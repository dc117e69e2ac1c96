#!/usr/bin/env bash
# The landing page at / in a real headless browser (Debian's chromium and
# chromedriver through Selenium): it renders, logs no console error, loads
# nothing from elsewhere, names only public caches, and the nix.conf lines it
# shows let real Nix substitute from the cache with signatures required.
# The screenshot is kept in $LARDER_ARTIFACTS (default build/artifacts).
source "$(dirname "$0")/lib.sh"
# Debian's python3-selenium: the system Python, whatever else is on PATH.

start_server "$TMP/data"
export LARDER_SERVER=$URL LARDER_TOKEN=$ADMIN_TOKEN
"$LARDER" cache configure main --public > /dev/null || fail "cache configure --public"
"$LARDER" cache create hidden-team > /dev/null || fail "cache create"
root=$(bash "$LARDER_SOURCE/tests/e2e/make_corpus.sh" small landing-$$)
mapfile -t closure < <(nix-store -qR "$root")
"$LARDER" push main "$root" > "$TMP/push.out" 2>&1 || { cat "$TMP/push.out"; fail "larder push"; }

artifacts=${LARDER_ARTIFACTS:-$LARDER_SOURCE/build/artifacts}
mkdir -p "$artifacts"
/usr/bin/python3 - "$URL/" "$artifacts/landing-page.png" "$TMP/nix-conf" <<'PY' || fail "the landing page in chromium"
import sys
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
url, shot, conf = sys.argv[1:4]
o = webdriver.ChromeOptions()
for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1000,800"):
    o.add_argument(a)
o.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
try:
    d.get(url)
    assert d.title == "Larder: Nix binary caches", d.title
    assert d.find_element(By.TAG_NAME, "h1").text == "Nix binary caches"
    sections = d.find_elements(By.CSS_SELECTOR, "section")
    assert [s.get_attribute("id") for s in sections] == ["cache-main"], [s.get_attribute("id") for s in sections]
    assert "hidden-team" not in d.page_source, "a private cache is named"
    errors = [e for e in d.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert not errors, errors
    # Every request the page made went to this server (no external assets).
    import json
    requested = [json.loads(e["message"])["message"]["params"].get("request", {}).get("url", "")
                 for e in d.get_log("performance")
                 if json.loads(e["message"])["message"]["method"] == "Network.requestWillBeSent"]
    assert requested and all(u.startswith(url) for u in requested), requested
    lines = d.find_element(By.CSS_SELECTOR, "#cache-main pre.nix-conf").text
    open(conf, "w").write(lines + "\n")
    d.save_screenshot(shot)
    print(f"rendered; {len(requested)} request(s), all to the server; no console errors")
finally:
    d.quit()
PY
[ -s "$artifacts/landing-page.png" ] || fail "no screenshot"
grep -q "^extra-substituters = $URL/main$" "$TMP/nix-conf" || fail "the page's lines: $(cat "$TMP/nix-conf")"
pass "the landing page renders in headless chromium without console errors or external requests; only public caches; screenshot $artifacts/landing-page.png"

# The copied lines, as they are, in Nix's configuration.
nix-store --delete "${closure[@]}" > /dev/null 2>&1 || fail "could not delete the closure"
export XDG_CACHE_HOME=$TMP/xdg-landing
NIX_CONFIG="$NIX_CONFIG"$'\n'"$(cat "$TMP/nix-conf")" nix-store -r "$root" > /dev/null 2> "$TMP/nix.log" \
    || fail "substituting with the page's nix.conf lines: $(tail -3 "$TMP/nix.log")"
for p in "${closure[@]}"; do [ -e "$p" ] || fail "$p was not substituted"; done
pass "with only the page's two nix.conf lines (require-sigs on), Nix substituted ${#closure[@]} paths"
