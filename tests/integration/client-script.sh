#!/bin/sh
# Hook script for dhclient (-sf) and busybox udhcpc (-s) in the test harness.
#
# It replaces the stock scripts, which would rewrite the machine's
# /etc/resolv.conf and routes (`ip netns exec` shares the host's /etc).
# This one only records what the client tells it, one file per event, in
# the directory named by $DFO_CLIENT_DIR. With DFO_CLIENT_CONFIGURE=1 it
# also puts the leased address on the interface so that unicast renewals
# work, but only after checking that it runs inside a named network
# namespace. It never writes outside $DFO_CLIENT_DIR and never touches /etc.

dir="$DFO_CLIENT_DIR"
[ -n "$dir" ] && [ -d "$dir" ] || exit 0

if [ -n "$reason" ]; then
    client=dhclient
    event="$reason"
else
    client=udhcpc
    event="$1"
fi

# Configure first, then publish the event: a test that sees the event may
# look at the interface at once.
configure() {
    [ "$DFO_CLIENT_CONFIGURE" = 1 ] || return 0
    # Refuse to configure anything in the machine's own namespace.
    ns="$(ip netns identify 2>/dev/null)"
    [ -n "$ns" ] || return 0
    [ -n "$interface" ] || return 0
    case "$client:$event" in
        dhclient:PREINIT)
            ip link set dev "$interface" up
            ;;
        dhclient:BOUND|dhclient:RENEW|dhclient:REBIND|dhclient:REBOOT)
            if [ -n "$old_ip_address" ] && [ "$old_ip_address" != "$new_ip_address" ]; then
                ip -4 addr flush dev "$interface" scope global 2>/dev/null
            fi
            ip -4 addr replace "$new_ip_address/$new_subnet_mask" dev "$interface"
            ;;
        dhclient:EXPIRE|dhclient:FAIL|dhclient:RELEASE|dhclient:STOP)
            [ -n "$old_ip_address" ] && ip -4 addr del "$old_ip_address/$old_subnet_mask" dev "$interface" 2>/dev/null
            ;;
        udhcpc:deconfig)
            ip -4 addr flush dev "$interface" scope global 2>/dev/null
            ip link set dev "$interface" up
            ;;
        udhcpc:bound|udhcpc:renew)
            ip -4 addr replace "$ip/${mask:-$subnet}" dev "$interface"
            ;;
    esac
    return 0
}

configure

stamp="$(date +%s%N 2>/dev/null || date +%s)"
tmp="$dir/.tmp.$$"
{
    echo "client=$client"
    echo "event=$event"
    # Only the variables the clients define for a lease; nothing else of
    # the environment is recorded.
    env | grep -E '^(interface|new_[a-z0-9_]+|old_[a-z0-9_]+|requested_[a-z0-9_]+|medium|ip|siaddr|sname|boot_file|subnet|mask|router|dns|serverid|lease|domain|broadcast|hostname|ntpsrv|wins|opt[0-9]+|message)='
} > "$tmp" && mv "$tmp" "$dir/ev.$stamp.$$"
exit 0
