#!/bin/sh
# stagebox: builds build/stagebox_<version>_<arch>.deb with dpkg-deb from the
# tree packaging/install-tree.sh stages (the same list as `make install`).
#
# usage: build-deb.sh --arch amd64|arm64 --node-modules DIR --dist DIR --out DIR
set -eu

die() { echo "build-deb.sh: $*" >&2; exit 1; }

ARCH= NODE_MODULES= DIST= OUT=
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || die "option $1 needs a value"
  case "$1" in
    --arch) ARCH=$2 ;;
    --node-modules) NODE_MODULES=$2 ;;
    --dist) DIST=$2 ;;
    --out) OUT=$2 ;;
    *) die "unknown option $1; allowed: --arch --node-modules --dist --out" ;;
  esac
  shift 2
done
case "$ARCH" in
  amd64) ELF_MACHINE=62 NPM_ARCH=x64 ;;
  arm64) ELF_MACHINE=183 NPM_ARCH=arm64 ;;
  *) die "--arch ${ARCH:-(none)}: allowed: amd64, arm64" ;;
esac
[ -d "$NODE_MODULES" ] || die "--node-modules $NODE_MODULES: no such directory"
[ -d "$DIST" ] || die "--dist $DIST: no such directory"
[ -n "$OUT" ] || die "--out is required"
OUT=$(mkdir -p "$OUT" && cd "$OUT" && pwd)

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
VERSION=$(node -p 'require(process.argv[1]).version' "$TOP/package.json")
WORK=$OUT/deb/$ARCH
ROOT=$WORK/root
rm -rf "$WORK"
mkdir -p "$ROOT/DEBIAN"

sh "$HERE/../install-tree.sh" --list "$HERE/../install-files.txt" --src "$TOP" --dist "$DIST" \
  --node-modules "$NODE_MODULES" --destdir "$ROOT" --prefix /usr --unitdir /lib/systemd/system --npm-arch "$NPM_ARCH"

# Every native addon must be built for the package's architecture
# (e_machine at offset 18 of the ELF header: 62 x86-64, 183 AArch64).
ADDONS=$(find "$ROOT/usr/lib/stagebox/node_modules" -name '*.node' -type f)
[ -n "$ADDONS" ] || die "no native addons (*.node) in $NODE_MODULES: were they built?"
for f in $ADDONS; do
  m=$(od -An -t u2 -j 18 -N 2 "$f" | tr -d ' ')
  [ "$m" = "$ELF_MACHINE" ] || die "$f: ELF machine $m, but a $ARCH package needs $ELF_MACHINE"
done

# Library dependencies of the addons (libasound2, libc6, libstdc++6...) from
# the shlibs of this machine's packages; dpkg-shlibdeps wants a debian/control,
# hence the scratch source tree.
if [ "$ARCH" = "$(dpkg --print-architecture)" ]; then
  mkdir -p "$WORK/src/debian"
  printf 'Source: stagebox\n\nPackage: stagebox\nArchitecture: any\n' > "$WORK/src/debian/control"
  # shellcheck disable=SC2086
  # --warnings=0: the addons leave N-API and V8 symbols to the node binary that loads them.
  (cd "$WORK/src" && dpkg-shlibdeps --warnings=0 -O $ADDONS > "$WORK/shlibs")
  SHLIBS=$(sed -n 's/^shlibs:Depends=//p' "$WORK/shlibs")
  [ -n "$SHLIBS" ] || die "dpkg-shlibdeps printed no shlibs:Depends for $ADDONS"
else
  # Cross-built addons: this machine has no $ARCH shlibs to ask; the floor
  # is Debian 12's (glibc 2.36 era) as for the arm64 build's sysroot.
  SHLIBS="libasound2 (>= 1.0.16), libc6 (>= 2.34), libstdc++6 (>= 5.2)"
fi

for f in postinst prerm postrm; do install -m 0755 "$HERE/$f" "$ROOT/DEBIAN/$f"; done
# Everything under /etc is a conffile (Debian policy 10.7.2): an admin's
# edit of /etc/stagebox/stagebox.json survives upgrades.
(cd "$ROOT" && find etc -type f | sort | sed 's|^|/|') > "$ROOT/DEBIAN/conffiles"
SIZE=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
sed -e "s|@VERSION@|$VERSION|" -e "s|@ARCH@|$ARCH|" -e "s|@INSTALLED_SIZE@|$SIZE|" \
  -e "s|@SHLIBS_DEPENDS@|$SHLIBS|" "$HERE/control.in" > "$ROOT/DEBIAN/control"

DEB=$OUT/stagebox_${VERSION}_$ARCH.deb
dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$DEB" >/dev/null
echo "$DEB"
