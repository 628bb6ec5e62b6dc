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
# Packaging (make deb and its tests): python3-yaml parses the kas files, dpkg-dev
# for dpkg-architecture and dpkg-shlibdeps, passwd for useradd in the package's postinst.
APT_PACKAGES += python3-yaml dpkg-dev passwd
SCENARIOS ?=
SECONDS ?=
MONITORING ?=

.PHONY: help deps system-deps build run test bench clean install deb yocto-shrinkwrap

help:
	@echo "make run    install, build and start the service on embedded defaults (port 5100)"
	@echo "make test   install, build and run every test"
	@echo "make install DESTDIR=dir [PREFIX=/usr]   stage the installed tree (packaging/README.md)"
	@echo "make deb [DEB_ARCH=arm64]                 build build/stagebox_<version>_<arch>.deb"
	@echo "make yocto-shrinkwrap                     regenerate the Yocto recipe's npm-shrinkwrap.json"
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

test: build
	node --test --test-concurrency=1 --test-timeout=120000 $$(find dist/test -name '*.test.js' | sort)

bench: build
	@node dist/bench/run-bench.js $(if $(SCENARIOS),--scenarios $(SCENARIOS)) $(if $(SECONDS),--seconds $(SECONDS)) $(if $(MONITORING),--monitoring $(MONITORING))

# --- install, deb, Yocto: one file list, packaging/install-files.txt -------
PREFIX ?= /usr
DESTDIR ?=
HOST_ARCH := $(shell dpkg --print-architecture 2>/dev/null)
DEB_ARCH ?= $(HOST_ARCH)
SD_NOTIFY_SRC := $(filter-out native/sd-notify/build,$(wildcard native/sd-notify/*))
YOCTO_SHRINKWRAP := yocto/meta-stagebox/recipes-stagebox/stagebox/stagebox/npm-shrinkwrap.json

# The service's own code only (src/), without tests, benchmarks or source maps.
build/dist/.stamp: $(shell find src -name '*.ts') tsconfig.json tsconfig.build.json | deps
	@rm -rf build/dist
	@npx tsc -p tsconfig.build.json --outDir build/dist
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
