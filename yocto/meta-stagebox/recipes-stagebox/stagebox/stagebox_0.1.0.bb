SUMMARY = "stagebox: ALSA capture streamed to in-ear monitor phones over WebSocket"
DESCRIPTION = "The stage box's one service: captures the inputs of a USB audio \
interface and streams per-musician Opus mixes to phones, with health over MQTT."
# LICENSE and LIC_FILES_CHKSUM: the service (MIT) and every npm module it
# ships, generated from package-lock.json by `make yocto-licenses`.
require stagebox-licenses.inc

# The sources are the repository this layer sits in (STAGEBOX_TOPDIR, set in
# conf/layer.conf): the files packaging/install-files.txt installs plus what
# builds them. npmsw:// fetches every npm dependency the shrinkwrap names
# (generated from package-lock.json by `make yocto-shrinkwrap`); dev=1 also
# fetches TypeScript for do_compile_ts, while NPM_INSTALL_DEV stays 0 so no
# devDependency reaches the image.
FILESEXTRAPATHS:prepend := "${STAGEBOX_TOPDIR}:"
SRC_URI = " \
    file://package.json;subdir=stagebox \
    file://package-lock.json;subdir=stagebox \
    file://tsconfig.json;subdir=stagebox \
    file://tsconfig.build.json;subdir=stagebox \
    file://tsconfig.web-client.json;subdir=stagebox \
    file://bin;subdir=stagebox \
    file://src;subdir=stagebox \
    file://web;subdir=stagebox \
    file://docs;subdir=stagebox \
    file://native/sd-notify;subdir=stagebox \
    file://systemd/stagebox.service;subdir=stagebox \
    file://rootfs-overlay;subdir=stagebox \
    file://packaging/install-files.txt;subdir=stagebox \
    file://packaging/install-tree.sh;subdir=stagebox \
    file://packaging/prune-node-modules.js;subdir=stagebox \
    file://packaging/runtime-packages.js;subdir=stagebox \
    npmsw://${THISDIR}/${BPN}/npm-shrinkwrap.json;destsuffix=stagebox;dev=1 \
    file://0001-alsa-capture-build-with-node-gyp-10.patch;patchdir=node_modules/alsa-capture \
"
S = "${WORKDIR}/stagebox"

inherit npm systemd useradd features_check

# The unit is the service's only way to run (Type=notify, DynamicUser=yes,
# StateDirectory=).
REQUIRED_DISTRO_FEATURES = "systemd"

# alsa-capture links libasound; node-gyp cross-compiles the three native
# addons (alsa-capture, @discordjs/opus, stagebox-sd-notify) with the
# target toolchain against nodejs-native's headers, with python3-native
# running gyp (npm.bbclass). scarthgap's Python 3.12 has no distutils, which
# the gyp of node-gyp 9 imports: package.json overrides node-gyp to 10.x, and
# the patch above gives alsa-capture that range too (npm.bbclass installs the
# package globally, where npm ignores overrides and resolves every range in
# the shrinkwrap's registry). So no distutils stand-in
# (python3-setuptools-native) is needed: test/yocto-build/yocto-compile.test.ts
# builds the addons the class's way with a Python that has no distutils.
# The npm class adds nodejs to RDEPENDS.
DEPENDS += "alsa-lib"
RDEPENDS:${PN} += "libasound alsa-conf"

# npm picks optional platform packages (@napi-rs/nice-*) by the CPU it is
# told; the class's registry does not say which package is for which CPU,
# though, so npm installs them all and do_install keeps the target's.
EXTRA_OENPM = "--cpu=${NPM_ARCH} --os=linux"

# The service's own code: tsc from the shrinkwrap's TypeScript, src/ only.
do_compile_ts() {
    rm -rf ${WORKDIR}/tsc-dist
    cd ${S}
    node ${S}/node_modules/typescript/bin/tsc -p tsconfig.build.json --outDir ${WORKDIR}/tsc-dist
    node ${S}/node_modules/typescript/bin/tsc -p tsconfig.web-client.json --outDir ${WORKDIR}/tsc-dist/web
}
addtask compile_ts after do_configure before do_compile

# The same list and installer as `make install` and `make deb`; node_modules
# is the production tree npm.bbclass's do_compile built in NPM_BUILD. The
# installer drops what the service never runs: node-gyp and what only it
# needs, scripts for other interpreters, and the platform packages for other
# targets, which npm installs all of here (the class's local registry does not
# tell npm their os/cpu) and whose addons would fail QA (arch).
do_install() {
    sh ${S}/packaging/install-tree.sh --list ${S}/packaging/install-files.txt --src ${S} \
        --dist ${WORKDIR}/tsc-dist --node-modules ${NPM_BUILD}/lib/node_modules/${BPN}/node_modules \
        --destdir ${D} --prefix ${prefix} --unitdir ${systemd_system_unitdir} \
        --npm-arch ${NPM_ARCH} --libc ${TCLIBC}
}

SYSTEMD_SERVICE:${PN} = "stagebox.service"
SYSTEMD_AUTO_ENABLE:${PN} = "enable"

# The unit runs DynamicUser=yes; systemd takes this static user when it
# exists, so the state partition's files keep one owner across boots.
USERADD_PACKAGES = "${PN}"
USERADD_PARAM:${PN} = "--system --user-group --no-create-home --home-dir /var/lib/stagebox --shell /sbin/nologin --groups audio stagebox"

CONFFILES:${PN} = "${sysconfdir}/stagebox/stagebox.json"
FILES:${PN} += "${systemd_system_unitdir}/stagebox.service ${sysconfdir}"

# @napi-rs/nice-linux-arm64-gnu (piscina's optional dependency) is a
# prebuilt, already stripped addon from the npm registry.
INSANE_SKIP:${PN} += "already-stripped"
