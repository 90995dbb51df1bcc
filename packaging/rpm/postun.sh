if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    # An upgrade restarts a running keepalived on the new binary.
    if [ "$1" -ge 1 ]; then
        systemctl try-restart keepalived.service >/dev/null 2>&1 || :
    fi
fi
