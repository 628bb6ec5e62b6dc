#!/bin/sh
# stagebox: installs the files named in packaging/install-files.txt under a
# DESTDIR. The one installer behind `make install`, `make deb` and the Yocto
# recipe's do_install, so all three ship the same tree.
#
# usage: install-tree.sh --list FILE --src DIR --dist DIR --node-modules DIR
#                        --destdir DIR [--prefix /usr] [--unitdir DIR]
#                        [--npm-arch ARCH] [--libc glibc|musl]
#   --npm-arch, --libc: the target of node_modules (Node.js arch, default this
#   machine's; C library, default glibc): platform packages for others are removed
set -eu

die() { echo "install-tree.sh: $*" >&2; exit 1; }
HERE=$(cd "$(dirname "$0")" && pwd)

LIST= SRC= DIST= NODE_MODULES= DESTDIR= PREFIX=/usr UNITDIR=/lib/systemd/system NPM_ARCH= LIBC=glibc
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || die "option $1 needs a value"
  case "$1" in
    --list) LIST=$2 ;;
    --src) SRC=$2 ;;
    --dist) DIST=$2 ;;
    --node-modules) NODE_MODULES=$2 ;;
    --destdir) DESTDIR=$2 ;;
    --prefix) PREFIX=$2 ;;
    --unitdir) UNITDIR=$2 ;;
    --npm-arch) NPM_ARCH=$2 ;;
    --libc) LIBC=$2 ;;
    *) die "unknown option $1; allowed: --list --src --dist --node-modules --destdir --prefix --unitdir --npm-arch --libc" ;;
  esac
  shift 2
done
for v in LIST SRC DIST NODE_MODULES DESTDIR; do
  eval "val=\$$v"
  [ -n "$val" ] || die "--$(echo "$v" | tr 'A-Z_' 'a-z-') is required"
done
[ -f "$LIST" ] || die "list $LIST: no such file"
case "$PREFIX" in /*) ;; *) die "--prefix $PREFIX: must be an absolute path" ;; esac
case "$UNITDIR" in /*) ;; *) die "--unitdir $UNITDIR: must be an absolute path" ;; esac

# node-gyp leaves objects, static libraries and Makefiles with build-host
# paths next to each addon; only build/Release/*.node is loaded at run time
# (what OE's npm class keeps too). node-pre-gyp's build-tmp-* is its scratch
# copy: the addon it loads was copied out of it.
prune_gyp() {
  find "$1" -name binding.gyp -type f | while read -r gyp; do
    pkg=$(dirname "$gyp")
    for b in "$pkg"/build-tmp-*; do
      [ ! -d "$b" ] || rm -rf "$b"
    done
    if [ -d "$pkg/build" ]; then
      find "$pkg/build" -type f ! -path "$pkg/build/Release/*.node" -exec rm -f {} +
      find "$pkg/build" -type f -path "$pkg/build/Release/*/*" -exec rm -f {} +
      find "$pkg/build" -depth -type d -empty -delete
    fi
  done
}

n=0
while read -r kind mode src target rest; do
  case "$kind" in ''|'#'*) continue ;; esac
  [ -z "$rest" ] && [ -n "$target" ] || die "$LIST: bad line: $kind $mode $src $target $rest (want: kind mode source target)"
  case "$src" in
    @DIST@*) from=$DIST${src#@DIST@} ;;
    @NODE_MODULES@*) from=$NODE_MODULES${src#@NODE_MODULES@} ;;
    /*) die "$LIST: source $src must be relative to the source tree" ;;
    *) from=$SRC/$src ;;
  esac
  to=$(echo "$target" | sed -e "s|@PREFIX@|$PREFIX|" -e "s|@UNITDIR@|$UNITDIR|")
  case "$to" in /*) ;; *) die "$LIST: target $target is not absolute" ;; esac
  to=$DESTDIR$to
  case "$kind" in
    file)
      [ -f "$from" ] || die "$LIST: $src: no such file ($from)"
      install -D -m "$mode" "$from" "$to"
      # The unit names the install directory; follow a non-default prefix.
      case "$to" in *.service)
        [ "$PREFIX" = /usr ] || sed -i "s|/usr/lib/stagebox/|$PREFIX/lib/stagebox/|g" "$to" ;;
      esac ;;
    tree)
      [ -d "$from" ] || die "$LIST: $src: no such directory ($from)"
      rm -rf "$to"
      mkdir -p "$(dirname "$to")"
      # -L: a file: dependency (stagebox-sd-notify) is a symlink in node_modules.
      cp -RL "$from" "$to"
      rm -rf "$to/.bin"
      find "$to" -type d -exec chmod 0755 {} +
      case "$mode" in
        modules)
          prune_gyp "$to"
          node "$HERE/prune-node-modules.js" --package "$SRC/package.json" \
            --cpu "${NPM_ARCH:-$(node -p process.arch)}" --libc "$LIBC" "$to"
          # Nothing in node_modules is executed but through node; only the
          # addons (shared objects) keep an executable mode, as npm.bbclass installs them.
          find "$to" -type f -name '*.node' -exec chmod 0755 {} +
          find "$to" -type f ! -name '*.node' -exec chmod 0644 {} + ;;
        0[0-7][0-7][0-7]) find "$to" -type f -exec chmod "$mode" {} + ;;
        *) die "$LIST: tree $src: mode $mode; allowed: modules or an octal mode like 0644" ;;
      esac ;;
    *) die "$LIST: kind $kind; allowed: file, tree" ;;
  esac
  n=$((n + 1))
done < "$LIST"
[ "$n" -gt 0 ] || die "$LIST: no entries"
echo "install-tree.sh: $n entries installed under $DESTDIR"
