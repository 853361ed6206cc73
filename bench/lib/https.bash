# Shared by bench/https.sh and tests/e2e/test_loadgen.sh (sourced, not run; not named *.sh
# so that `make bench` does not run it). Makes a throwaway iotsec CA with a client and a
# server certificate, and starts nginx as the current user on 127.0.0.1 with a private
# prefix: TLS 1.3 only, client certificates required, `return 204` on /api/telemetry.
#
# The caller sets HTTPS_WORK (a private temp dir it removes) and IOTSEC (the CLI), and
# calls https_stop_all from its exit trap.

https_pids=()

# https_make_pki: $HTTPS_WORK/var is an iotsec data dir with a CA and an enrolled device
# dev-0 (certs/dev-0.{crt,key}); certs/server.{crt,key} is a server certificate for
# localhost and 127.0.0.1 signed by the same CA's root key with the openssl CLI, because
# the CLI has no server-certificate command yet.
https_make_pki() {
    local w=$HTTPS_WORK
    (umask 077 && printf 'https bench passphrase\n' >"$w/pass")
    export IOTSEC_PASSPHRASE_FILE="$w/pass" IOTSEC_DATA="$w/var"
    mkdir -m 700 "$w/certs"
    "$IOTSEC" ca init >/dev/null 2>&1 || { echo "https: iotsec ca init failed" >&2; return 1; }
    "$IOTSEC" device issue --id dev-0 --out "$w/certs" >/dev/null 2>&1 ||
        { echo "https: iotsec device issue failed" >&2; return 1; }
    (umask 077 && "$IOTSEC" vault get ca-root.key >"$w/certs/ca-root.key") ||
        { echo "https: cannot read the CA key from the vault" >&2; return 1; }
    openssl ecparam -name prime256v1 -genkey -noout -out "$w/certs/server.key" 2>/dev/null
    chmod 600 "$w/certs/server.key"
    openssl req -new -key "$w/certs/server.key" -subj /CN=localhost \
        -out "$w/certs/server.csr" 2>/dev/null
    printf '%s\n' "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" \
        "subjectAltName=DNS:localhost,IP:127.0.0.1" >"$w/certs/server.ext"
    openssl x509 -req -in "$w/certs/server.csr" -CA "$w/var/ca.crt" \
        -CAkey "$w/certs/ca-root.key" -set_serial "0x$(openssl rand -hex 16)" -days 30 \
        -sha256 -extfile "$w/certs/server.ext" -out "$w/certs/server.crt" 2>/dev/null ||
        { echo "https: openssl could not sign the server certificate" >&2; return 1; }
    rm -f "$w/certs/ca-root.key" "$w/certs/server.csr"
}

# https_alive PID: true while PID runs. Not `kill -0` alone: a child that has exited stays
# a zombie until it is waited for, and kill -0 still succeeds on it.
https_alive() {
    local state
    state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n "$state" && "$state" != Z ]]
}

# https_wait_port PORT PID: true once something accepts on 127.0.0.1:PORT (at most ~5 s),
# false at once if PID has died.
https_wait_port() {
    local port=$1 pid=$2 i
    for ((i = 0; i < 50; i++)); do
        https_alive "$pid" || return 1
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

# https_start_nginx: nginx in the foreground of a background job (daemon off), its prefix,
# config, pid, logs and temp files under $HTTPS_WORK/nginx. Picks a random free port,
# trying again (at most 5 times) if the port was taken. Sets NGINX_PORT and NGINX_PID.
https_start_nginx() {
    local d=$HTTPS_WORK/nginx nginx_bin attempt
    nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
    if [[ ! -x "$nginx_bin" ]]; then
        echo "https: nginx not installed (scripts/install-deps installs it)" >&2
        return 1
    fi
    mkdir -p "$d/tmp" "$d/logs"
    for ((attempt = 0; attempt < 5; attempt++)); do
        NGINX_PORT=$((20000 + RANDOM % 40000))
        cat >"$d/nginx.conf" <<EOF
# bench: the reference server. As close as nginx gets to "verify the client and answer".
worker_processes $(nproc);
daemon off;
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    # A device connection stays open: do not close it every 1000 requests (the default).
    keepalive_requests 10000000;
    keepalive_timeout 75s;
    server {
        listen 127.0.0.1:$NGINX_PORT ssl;
        ssl_protocols TLSv1.3;
        ssl_certificate $HTTPS_WORK/certs/server.crt;
        ssl_certificate_key $HTTPS_WORK/certs/server.key;
        ssl_verify_client on;
        ssl_client_certificate $HTTPS_WORK/var/ca.crt;
        ssl_crl $HTTPS_WORK/var/ca.crl;
        ssl_verify_depth 2;
        # Every handshake is a full one: the load generator never resumes, so tickets
        # would be work for nothing.
        ssl_session_tickets off;
        location = /api/telemetry { return 204; }
        location / { return 404; }
    }
}
EOF
        "$nginx_bin" -p "$d" -c "$d/nginx.conf" -e "$d/logs/error.log" 2>>"$d/logs/stderr" &
        NGINX_PID=$!
        https_pids+=("$NGINX_PID")
        if https_wait_port "$NGINX_PORT" "$NGINX_PID"; then return 0; fi
        kill "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
        grep -q "Address already in use" "$d/logs/error.log" "$d/logs/stderr" 2>/dev/null || break
    done
    echo "https: nginx did not start:" >&2
    tail -n 5 "$d/logs/error.log" "$d/logs/stderr" >&2 2>/dev/null || true
    return 1
}

# ---------------------------------------------------------------------------------------
# IOTSECD: how the benchmark starts iotsecd. iotsecd is being written; this is the one
# place to change when its command line or file layout settles. ASSUMPTIONS to check:
#   - it reads the data dir made by https_make_pki (ca.crt, ca.crl, store.db with dev-0
#     enrolled) through --data;
#   - it finds its server certificate and key as server.crt / server.key in the data dir
#     (copied there below);
#   - telemetry is served on the mTLS device port; the API port is for operators.
# Sets IOTSECD_PORT (the port the load generator uses) and IOTSECD_PID.
# ---------------------------------------------------------------------------------------
https_start_iotsecd() {
    local bin=$1 data=$HTTPS_WORK/var attempt api_port
    install -m 644 "$HTTPS_WORK/certs/server.crt" "$data/server.crt"
    install -m 600 "$HTTPS_WORK/certs/server.key" "$data/server.key"
    # The load is one device (dev-0) far above the 60/min contract limit: a limit that
    # never triggers, so that every request is validated, rate-checked and stored.
    printf '[limits]\nrate_per_minute = 1000000\n' >"$data/iotsecd.conf"
    chmod 600 "$data/iotsecd.conf"
    for ((attempt = 0; attempt < 5; attempt++)); do
        IOTSECD_PORT=$((20000 + RANDOM % 40000))
        api_port=$((IOTSECD_PORT + 1))
        "$bin" --data "$data" --device-port "$IOTSECD_PORT" --api-port "$api_port" \
            >>"$HTTPS_WORK/iotsecd.log" 2>&1 &
        IOTSECD_PID=$!
        https_pids+=("$IOTSECD_PID")
        if https_wait_port "$IOTSECD_PORT" "$IOTSECD_PID"; then return 0; fi
        kill "$IOTSECD_PID" 2>/dev/null || true
        wait "$IOTSECD_PID" 2>/dev/null || true
    done
    echo "https: iotsecd did not start:" >&2
    tail -n 5 "$HTTPS_WORK/iotsecd.log" >&2 2>/dev/null || true
    return 1
}

# Stops what https_start_* started, by pid: TERM, then KILL after ~3 s.
https_stop_all() {
    local pid i
    for pid in "${https_pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || continue
        for ((i = 0; i < 30; i++)); do
            https_alive "$pid" || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    https_pids=()
}

# https_loadgen PORT MODE SECONDS [extra options]: runs the load generator against
# 127.0.0.1:PORT with the dev-0 certificate; its full output in $HTTPS_WORK/loadgen.out,
# the machine-readable line on stdout.
https_loadgen() {
    local port=$1 mode=$2 seconds=$3
    shift 3
    "$LOADGEN" --host 127.0.0.1 --port "$port" --servername localhost --mode "$mode" \
        --duration "$seconds" --ca "$HTTPS_WORK/var/ca.crt" \
        --cert "$HTTPS_WORK/certs/dev-0.crt" --key "$HTTPS_WORK/certs/dev-0.key" \
        --path /api/telemetry --method POST "$@" >"$HTTPS_WORK/loadgen.out" 2>&1 || {
        echo "https: load generator failed:" >&2
        cat "$HTTPS_WORK/loadgen.out" >&2
        return 1
    }
    grep '^mode=' "$HTTPS_WORK/loadgen.out"
}

# field LINE NAME: the value of NAME=... in a summary line.
https_field() {
    local kv
    for kv in $1; do
        if [[ "${kv%%=*}" == "$2" ]]; then
            echo "${kv#*=}"
            return 0
        fi
    done
    return 1
}
