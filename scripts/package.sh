#!/bin/bash
# package.sh - build the .deb and .rpm of rlvs into target/packages/.
#
#   bash scripts/package.sh            release build, then both packages
#   RLVS_PACKAGE_PROFILE=debug RLVS_PACKAGE_COMPRESS=fast bash scripts/package.sh
#                                      package target/debug/rlvs as built,
#                                      gzip -1 instead of xz/zstd (the test
#                                      suite's packaging check)
#   RLVS_PACKAGE_OUT=DIR               write there instead
#
# Each package installs /usr/sbin/rlvs (stripped; its debug symbols go to
# a separate -dbgsym .deb / -debuginfo .rpm by build id), the names
# ipvsadm, ipvsadm-save, ipvsadm-restore, keepalived and genhash, the
# systemd units, the distribution's configuration files, man pages and
# completions, and replaces the distribution's keepalived and ipvsadm.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PROFILE=${RLVS_PACKAGE_PROFILE:-release}
OUT=${RLVS_PACKAGE_OUT:-$ROOT/target/packages}
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
DEB_VERSION=$VERSION-1
ARCH=amd64
if [ "${RLVS_PACKAGE_COMPRESS:-best}" = fast ]; then DEB_Z=(-Zgzip -z1) RPM_Z=gzip
else DEB_Z=(-Zxz) RPM_Z=zstd; fi

need() { command -v "$1" >/dev/null || { echo "package.sh: needs $1 ($2)" >&2; exit 1; }; }
need dpkg-deb "apt-get install dpkg"
need objcopy "apt-get install binutils"
need readelf "apt-get install binutils"
if ! command -v cargo-generate-rpm >/dev/null; then
    echo "package.sh: installing cargo-generate-rpm (once, a few minutes)" >&2
    cargo install --locked --quiet --debug cargo-generate-rpm
fi

if [ "$PROFILE" = release ]; then
    cargo build --release -p rlvs
fi
BIN=$ROOT/target/$PROFILE/rlvs
[ -x "$BIN" ] || { echo "package.sh: no $BIN (cargo build first)" >&2; exit 1; }

rm -rf "$OUT"
mkdir -p "$OUT/work"
W=$OUT/work

# The binary without its debug sections, linked by build id and debuglink
# to a file holding them.
cp "$BIN" "$W/rlvs"
BUILD_ID=$(readelf -n "$W/rlvs" | sed -n 's/.*Build ID: \([0-9a-f]*\).*/\1/p')
[ -n "$BUILD_ID" ] || { echo "package.sh: $BIN has no build id" >&2; exit 1; }
objcopy --only-keep-debug --compress-debug-sections "$W/rlvs" "$W/rlvs.debug"
objcopy --strip-debug --strip-unneeded --add-gnu-debuglink="$W/rlvs.debug" "$W/rlvs"
DEBUG_PATH=/usr/lib/debug/.build-id/${BUILD_ID:0:2}/${BUILD_ID:2}.debug

# Man pages and completions from the binary itself, beside the
# hand-written pages of the faces.
"$W/rlvs" gen-docs "$W/docs"
cp packaging/man/*.[0-9] "$W/docs/man/"

FACES_SBIN="ipvsadm ipvsadm-save ipvsadm-restore keepalived"

# stage ROOTDIR FLAVOUR: the files both packages carry, where FLAVOUR
# (debian|rhel) puts them.
stage() {
    local r=$1 flavour=$2 unitdir zshdir
    if [ "$flavour" = debian ]; then unitdir=/lib/systemd/system; zshdir=/usr/share/zsh/vendor-completions
    else unitdir=/usr/lib/systemd/system; zshdir=/usr/share/zsh/site-functions; fi
    install -D -m 755 "$W/rlvs" "$r/usr/sbin/rlvs"
    install -D -m 755 packaging/lib/ipvsadm-rules "$r/usr/lib/rlvs/ipvsadm-rules"
    for u in keepalived rlvs ipvsadm; do
        install -D -m 644 "packaging/systemd/$flavour/$u.service" "$r$unitdir/$u.service"
    done
    install -D -m 644 packaging/etc/keepalived.conf.sample "$r/etc/keepalived/keepalived.conf.sample"
    for p in "$W"/docs/man/*; do
        local name sec
        name=$(basename "$p"); sec=${name##*.}
        mkdir -p "$r/usr/share/man/man$sec"
        gzip -9n -c "$p" > "$r/usr/share/man/man$sec/$name.gz"
    done
    install -D -m 644 "$W/docs/completions/rlvs.bash" "$r/usr/share/bash-completion/completions/rlvs"
    install -D -m 644 packaging/completions/ipvsadm.bash "$r/usr/share/bash-completion/completions/ipvsadm"
    install -D -m 644 "$W/docs/completions/_rlvs" "$r$zshdir/_rlvs"
    install -D -m 644 "$W/docs/completions/rlvs.fish" "$r/usr/share/fish/vendor_completions.d/rlvs.fish"
    install -D -m 644 README.md "$r/usr/share/doc/rlvs/README.md"
    printf 'rlvs %s\nLicense: GPL-2.0-or-later\n' "$VERSION" > "$r/usr/share/doc/rlvs/copyright"
}

# ---------------------------------------------------------------- Debian
D=$W/deb
stage "$D" debian
for n in $FACES_SBIN; do ln -s rlvs "$D/usr/sbin/$n"; done
mkdir -p "$D/usr/bin"
ln -s ../sbin/rlvs "$D/usr/bin/genhash"
install -D -m 644 packaging/etc/debian/keepalived.default "$D/etc/default/keepalived"
install -D -m 644 packaging/etc/debian/ipvsadm.default "$D/etc/default/ipvsadm"
install -D -m 644 packaging/etc/debian/rlvs.default "$D/etc/default/rlvs"
install -D -m 644 packaging/etc/debian/ipvsadm.rules "$D/etc/ipvsadm.rules"
mkdir -p "$D/DEBIAN"
install -m 755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$D/DEBIAN/"
(cd "$D" && find etc -type f | sed 's|^|/|' | sort) > "$D/DEBIAN/conffiles"
SIZE=$(du -sk --exclude=DEBIAN "$D" | cut -f1)
cat > "$D/DEBIAN/control" <<CONTROL
Package: rlvs
Version: $DEB_VERSION
Architecture: $ARCH
Maintainer: rlvs developers <rlvs@localhost>
Installed-Size: $SIZE
Depends: libc6 (>= 2.34), iproute2
Recommends: nftables
Provides: keepalived, ipvsadm
Conflicts: keepalived, ipvsadm
Replaces: keepalived, ipvsadm
Section: admin
Priority: optional
Homepage: https://github.com/rlvs/rlvs
Description: LVS load balancing and keepalived high availability in one program
 rlvs answers ipvsadm with ipvsadm's flags and output, runs keepalived.conf
 unchanged (VRRP, health checks, connection sync), and carries its own XDP
 data plane for kernels without ip_vs; on kernels with ip_vs it programs
 kernel IPVS. It installs the names ipvsadm, keepalived and genhash and
 the keepalived.service, ipvsadm.service and rlvs.service units.
CONTROL
dpkg-deb --root-owner-group "${DEB_Z[@]}" --build "$D" "$OUT/rlvs_${DEB_VERSION}_$ARCH.deb" >/dev/null

DD=$W/deb-dbgsym
install -D -m 644 "$W/rlvs.debug" "$DD$DEBUG_PATH"
mkdir -p "$DD/DEBIAN"
cat > "$DD/DEBIAN/control" <<CONTROL
Package: rlvs-dbgsym
Version: $DEB_VERSION
Architecture: $ARCH
Maintainer: rlvs developers <rlvs@localhost>
Depends: rlvs (= $DEB_VERSION)
Section: debug
Priority: optional
Build-Ids: $BUILD_ID
Description: debug symbols for rlvs
CONTROL
dpkg-deb --root-owner-group "${DEB_Z[@]}" --build "$DD" "$OUT/rlvs-dbgsym_${DEB_VERSION}_$ARCH.deb" >/dev/null

# ------------------------------------------------------------------ RHEL
R=$W/rpm
stage "$R" rhel
# cargo-generate-rpm carries files, not symlinks: the faces are one-line
# wrappers that give rlvs the name it dispatches on.
for n in $FACES_SBIN; do
    printf '#!/bin/bash\nexec -a %s /usr/sbin/rlvs "$@"\n' "$n" > "$R/usr/sbin/$n"; chmod 755 "$R/usr/sbin/$n"
done
mkdir -p "$R/usr/bin"
printf '#!/bin/bash\nexec -a genhash /usr/sbin/rlvs "$@"\n' > "$R/usr/bin/genhash"; chmod 755 "$R/usr/bin/genhash"
install -D -m 644 packaging/etc/rhel/keepalived.sysconfig "$R/etc/sysconfig/keepalived"
install -D -m 644 packaging/etc/rhel/rlvs.sysconfig "$R/etc/sysconfig/rlvs"
install -D -m 644 packaging/etc/rhel/ipvsadm-config "$R/etc/sysconfig/ipvsadm-config"

toml_str() { python3 -c 'import json,sys; print(json.dumps(open(sys.argv[1]).read()))' "$1"; }
{
    echo 'release = "1"'
    echo 'summary = "LVS load balancing and keepalived high availability in one program"'
    echo "post_install_script = $(toml_str packaging/rpm/post.sh)"
    echo "pre_uninstall_script = $(toml_str packaging/rpm/preun.sh)"
    echo "post_uninstall_script = $(toml_str packaging/rpm/postun.sh)"
    echo 'assets = ['
    (cd "$R" && find . -type f | sed 's|^\.||' | sort) | while read -r f; do
        mode=$(stat -c %a "$R$f")
        case $f in
            /etc/*) cfg=', config = "noreplace"' ;;
            /usr/share/doc/*) cfg=', doc = true' ;;
            *) cfg= ;;
        esac
        echo "  { source = \"$R$f\", dest = \"$f\", mode = \"$mode\"$cfg },"
    done
    echo ']'
    echo '[requires]'
    echo 'iproute = "*"'
    echo '[recommends]'
    echo 'nftables = "*"'
    for rel in provides conflicts obsoletes; do
        echo "[$rel]"; echo 'keepalived = "*"'; echo 'ipvsadm = "*"'
    done
} > "$W/rpm.toml"
cargo generate-rpm -p crates/rlvs --profile "$PROFILE" --auto-req disabled --payload-compress "$RPM_Z" \
    --metadata-overwrite "$W/rpm.toml" -o "$OUT/rlvs-$VERSION-1.x86_64.rpm"

{
    echo 'name = "rlvs-debuginfo"'
    echo 'release = "1"'
    echo 'summary = "Debug symbols for rlvs"'
    echo 'assets = ['
    echo "  { source = \"$W/rlvs.debug\", dest = \"$DEBUG_PATH\", mode = \"644\" },"
    echo ']'
    echo '[requires]'
    echo "rlvs = \"= $VERSION-1\""
} > "$W/rpm-debuginfo.toml"
cargo generate-rpm -p crates/rlvs --profile "$PROFILE" --auto-req disabled --payload-compress "$RPM_Z" \
    --metadata-overwrite "$W/rpm-debuginfo.toml" -o "$OUT/rlvs-debuginfo-$VERSION-1.x86_64.rpm"

rm -rf "$W"
ls -l "$OUT"
