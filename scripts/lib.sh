# Shell helpers the scripts share: `. "$(dirname "$0")/lib.sh"`.

# ready_port LOG: the port of the `listening 127.0.0.1:PORT ...` line a `c10k serve`
# writes to LOG once it accepts, waiting up to 5 s; empty if it never came.
ready_port() {
    local port=""
    for _ in $(seq 1 100); do
        port=$(sed -n 's/^listening 127.0.0.1:\([0-9]*\) .*/\1/p' "$1")
        [ -n "$port" ] && break
        sleep 0.05
    done
    echo "$port"
}
