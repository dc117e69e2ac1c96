# A real S3 for the tests: a one-node Ceph (one mon, one memstore OSD, no
# cephx) and radosgw, bound to 127.0.0.1 on free ports, in a directory of the
# caller's. Sourced by e2e tests:
#   ceph_s3_start DIR    sets S3_ENDPOINT S3_REGION S3_ACCESS_KEY S3_SECRET_KEY S3_BUCKET
#   ceph_s3_stop_rgw / ceph_s3_start_rgw   (only the gateway, for outage tests)
#   ceph_s3_signed METHOD PATH (status) / ceph_s3_request METHOD PATH (body)
#   ceph_s3_stop         (everything; also done by the e2e cleanup)
# Settings that matter (Ceph 16): memstore, pool size 1, few PGs, fast paxos,
# and `ms mon client mode = crc` for radosgw when auth is off.

source "$(dirname "${BASH_SOURCE[0]}")/ports.sh"

ceph_s3_signed() {  # METHOD PATH [curl args]: a SigV4 request with curl
    local method=$1 path=$2; shift 2
    curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X "$method" --aws-sigv4 "aws:amz:$S3_REGION:s3" \
        --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@" "$S3_ENDPOINT$path"
}

ceph_s3_request() {  # METHOD PATH: a SigV4 request with curl, the body on stdout
    curl -sf --max-time 10 -X "$1" --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
        -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$S3_ENDPOINT$2"
}

ceph_s3_start_rgw() {
    radosgw -c "$CEPH_DIR/ceph.conf" -f -n client.rgw > "$CEPH_DIR/log/rgw.out" 2>&1 &
    CEPH_RGW_PID=$!
    for _ in $(seq 240); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$S3_ENDPOINT/" || true)" = 200 ] && return 0
        kill -0 "$CEPH_RGW_PID" 2>/dev/null || { tail -5 "$CEPH_DIR/log/"*rgw*.log >&2; return 1; }
        sleep 0.25
    done
    return 1
}

ceph_s3_stop_rgw() {
    if [ -n "${CEPH_RGW_PID:-}" ]; then kill -9 "$CEPH_RGW_PID" 2>/dev/null || true; wait "$CEPH_RGW_PID" 2>/dev/null || true; fi
    CEPH_RGW_PID=
}

ceph_s3_stop() {
    for pid in ${CEPH_PROXY_PIDS:-}; do kill "$pid" 2>/dev/null || true; done
    CEPH_PROXY_PIDS=
    ceph_s3_stop_rgw
    for pid in ${CEPH_OSD_PID:-} ${CEPH_MON_PID:-}; do kill -9 "$pid" 2>/dev/null || true; done
    for pid in ${CEPH_OSD_PID:-} ${CEPH_MON_PID:-}; do wait "$pid" 2>/dev/null || true; done
    CEPH_OSD_PID= CEPH_MON_PID=
}

ceph_s3_start() {
    CEPH_DIR=$1
    mkdir -p "$CEPH_DIR/mon" "$CEPH_DIR/osd" "$CEPH_DIR/run" "$CEPH_DIR/log" "$CEPH_DIR/rgw"
    local mon2 mon1 rgw fsid
    mon2=$(free_port); mon1=$(free_port); rgw=$(free_port)
    fsid=$(cat /proc/sys/kernel/random/uuid)
    S3_ENDPOINT=http://127.0.0.1:$rgw S3_REGION=us-east-1 S3_BUCKET=larder-test
    S3_ACCESS_KEY=LARDERTESTACCESS0001 S3_SECRET_KEY=larder-test-secret-0000000000000000000001
    cat > "$CEPH_DIR/ceph.conf" <<CONF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$mon2,v1:127.0.0.1:$mon1]
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
public network = 127.0.0.0/8
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
auth supported = none
keyring = $CEPH_DIR/keyring
run dir = $CEPH_DIR/run
admin socket = $CEPH_DIR/run/\$cluster-\$name.asok
pid file = $CEPH_DIR/run/\$name.pid
log file = $CEPH_DIR/log/\$name.log
crash dir = $CEPH_DIR/crash
log to stderr = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
mon data avail warn = 1
mon data avail crit = 0
paxos propose interval = 0.05
paxos min wait = 0.01
[mon]
mon data = $CEPH_DIR/mon/\$cluster-\$id
[osd]
osd data = $CEPH_DIR/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = 4294967296
osd crush update on start = true
osd class load list = *
osd class default list = *
[client.rgw]
ms mon client mode = crc
rgw frontends = beast endpoint=127.0.0.1:$rgw
rgw data = $CEPH_DIR/rgw
rgw enable usage log = false
rgw gc obj min wait = 60
rgw gc processor period = 60
CONF
    local conf=$CEPH_DIR/ceph.conf
    ceph-authtool --create-keyring "$CEPH_DIR/keyring" --gen-key -n mon. --cap mon 'allow *' > /dev/null
    ceph-authtool "$CEPH_DIR/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' > /dev/null
    monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon2,v1:127.0.0.1:$mon1]" "$CEPH_DIR/monmap" > /dev/null
    mkdir -p "$CEPH_DIR/mon/ceph-a" "$CEPH_DIR/osd/ceph-0"
    ceph-mon -c "$conf" --mkfs -i a --monmap "$CEPH_DIR/monmap" --keyring "$CEPH_DIR/keyring" > "$CEPH_DIR/log/mkfs" 2>&1
    ceph-mon -c "$conf" -f -i a > "$CEPH_DIR/log/mon.out" 2>&1 &
    CEPH_MON_PID=$!
    for _ in $(seq 60); do ceph -c "$conf" --connect-timeout 2 mon stat > /dev/null 2>&1 && break; sleep 0.25; done
    local uuid id
    uuid=$(cat /proc/sys/kernel/random/uuid)
    id=$(ceph -c "$conf" osd new "$uuid")
    ceph-osd -c "$conf" -i "$id" --mkfs --osd-uuid "$uuid" >> "$CEPH_DIR/log/mkfs" 2>&1
    ceph-osd -c "$conf" -f -i "$id" > "$CEPH_DIR/log/osd.out" 2>&1 &
    CEPH_OSD_PID=$!
    for _ in $(seq 120); do ceph -c "$conf" osd dump 2>/dev/null | grep -q "^osd.$id up" && break; sleep 0.25; done
    ceph_s3_start_rgw || { echo "radosgw did not start" >&2; return 1; }
    radosgw-admin -c "$conf" -n client.admin user create --uid=larder --display-name=larder \
        --access-key="$S3_ACCESS_KEY" --secret-key="$S3_SECRET_KEY" > "$CEPH_DIR/log/user" 2>&1
    [ "$(ceph_s3_signed PUT "/$S3_BUCKET")" = 200 ] || { echo "cannot create the bucket" >&2; return 1; }
}

# tests/tools/delay_proxy.cpp (built next to $LARDER, under tests/) in front
# of radosgw: VAR DELAY_MS [proxy args...] sets VAR to the proxy's endpoint;
# it is stopped with everything else.
ceph_s3_proxy() {
    local var=$1 delay=$2 port; shift 2
    port=$(free_port)
    "${LARDER_DELAY_PROXY:-$(dirname "$LARDER")/tests/larder_delay_proxy}" --listen "$port" --upstream "${S3_ENDPOINT#http://}" \
        --delay-ms "$delay" "$@" > /dev/null 2>&1 &
    CEPH_PROXY_PIDS="${CEPH_PROXY_PIDS:-} $!"
    for _ in $(seq 50); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/" || true)" = 200 ] && break
        sleep 0.1
    done
    printf -v "$var" 'http://127.0.0.1:%s' "$port"
}
