# $1 = 0: the last version is being removed (not an upgrade).
if [ "$1" -eq 0 ]; then
    if [ -d /run/systemd/system ]; then
        systemctl --no-reload disable --now keepalived.service rlvs.service ipvsadm.service >/dev/null 2>&1 || :
    fi
    /usr/sbin/rlvs cleanup >/dev/null 2>&1 || :
fi
