# bash completion for ipvsadm (rlvs's ipvsadm face): ipvsadm 1.31's options.
_ipvsadm() {
    local cur prev
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    case $prev in
        -s|--scheduler)
            COMPREPLY=($(compgen -W "rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos" -- "$cur")); return ;;
        --start-daemon|--stop-daemon)
            COMPREPLY=($(compgen -W "master backup" -- "$cur")); return ;;
        --mcast-interface)
            COMPREPLY=($(compgen -W "$(ls /sys/class/net 2>/dev/null)" -- "$cur")); return ;;
        --tun-type)
            COMPREPLY=($(compgen -W "ipip gue gre" -- "$cur")); return ;;
        --pe)
            COMPREPLY=($(compgen -W "sip" -- "$cur")); return ;;
        -b|--sched-flags)
            COMPREPLY=($(compgen -W "sh-fallback sh-port mh-fallback mh-port flag-1 flag-2 flag-3" -- "$cur")); return ;;
        -t|--tcp-service|-u|--udp-service|--sctp-service|-f|--fwmark-service|-r|--real-server|-w|--weight|\
        -x|--u-threshold|-y|--l-threshold|-p|--persistent|-M|--netmask|--syncid|--sync-maxlen|\
        --mcast-group|--mcast-port|--mcast-ttl|--set)
            return ;;
    esac
    COMPREPLY=($(compgen -W "-A --add-service -E --edit-service -D --delete-service -C --clear
        -R --restore -S --save -a --add-server -e --edit-server -d --delete-server -L -l --list
        -Z --zero --set --start-daemon --stop-daemon -h --help
        -t --tcp-service -u --udp-service --sctp-service -f --fwmark-service -s --scheduler
        -p --persistent -M --netmask -b --sched-flags --pe -r --real-server -g --gatewaying
        -i --ipip -m --masquerading --tun-type --tun-port --tun-nocsum --tun-csum --tun-remcsum
        -w --weight -x --u-threshold -y --l-threshold --mcast-interface --syncid --sync-maxlen
        --mcast-group --mcast-port --mcast-ttl -c --connection --timeout --daemon --stats --rate
        --thresholds --persistent-conn --nosort --sort -n --numeric --exact -6 --ipv6 -o --ops" -- "$cur"))
}
complete -F _ipvsadm ipvsadm
