#!/bin/sh
# Install the Debian packages the integration tests and benchmarks need.
# Root only (CI runs as root); a non-root run prints what it skipped and the
# tests that need these tools say so in their skip reason.
# No service may start serving on the machine's real interfaces: policy-rc.d
# blocks service start-up during the install, and any unit is disabled after.
set -eu
PKGS="isc-dhcp-client isc-dhcp-relay dhcpcd-base busybox isc-dhcp-server kea-dhcp4-server kea-admin tshark iproute2 socat faketime nftables"
if [ "$(id -u)" != 0 ]; then
    echo "sysdeps: not root; skipping Debian packages ($PKGS)"
    exit 0
fi
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "sysdeps: installing$missing"
    restore=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        restore=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
    [ $restore = 1 ] && rm -f /usr/sbin/policy-rc.d
fi
# Make sure nothing the packages ship is serving.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    for u in isc-dhcp-server kea-dhcp4-server nftables; do
        systemctl disable --now "$u" >/dev/null 2>&1 || true
    done
fi
echo "sysdeps: ok"
