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
SCENARIOS ?=
SECONDS ?=
MONITORING ?=

.PHONY: help deps system-deps build run test bench clean

help:
	@echo "make run    install, build and start the service on embedded defaults (port 5100)"
	@echo "make test   install, build and run every test"
	@echo "make bench  run the benchmark (SCENARIOS=seed,wide SECONDS=5 to narrow it; MONITORING=off without health monitoring)"

system-deps:
	@node -e 'const m=+process.versions.node.split(".")[0]; if (m<20) { console.error("stagebox needs Node.js >= 20; found " + process.version); process.exit(1) }'
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
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

build: deps
	@npx tsc -p tsconfig.json

run: build
	node bin/stagebox.js

test: build
	node --test --test-concurrency=1 --test-timeout=120000 $$(find dist/test -name '*.test.js' | sort)

bench: build
	@node dist/bench/run-bench.js $(if $(SCENARIOS),--scenarios $(SCENARIOS)) $(if $(SECONDS),--seconds $(SECONDS)) $(if $(MONITORING),--monitoring $(MONITORING))

clean:
	rm -rf dist node_modules
