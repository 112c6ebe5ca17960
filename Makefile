# The two commands: `make run` (serve the portal on the embedded default) and
# `make test` (install what the tests need, run the whole suite). See README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
export HOST PORT

# Debian packages the lab and the browser tests need (installed by `make test` as root).
DEBIAN_PACKAGES := docker.io docker-registry openssh-server iproute2 iptables golang-go \
	golang-github-vmware-govmomi-dev busybox-static apache2-utils skopeo chromium fonts-liberation cloud-init \
	redis-server docker-compose libldap-dev libsasl2-dev slapd ldap-utils rpm createrepo-c dnf

.PHONY: run test lint lab lab-down venv assets system-packages clean

run: venv assets var/keys.env
	@. ./var/keys.env && exec $(BIN)/python manage.py serve --host "$(HOST)" --port "$(PORT)"

test: system-packages venv-test assets var/keys.env
	@./tests/run-suite

# mypy loads portal.settings (django-stubs), which needs the keys.
lint: venv-test var/keys.env
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	. ./var/keys.env && $(BIN)/mypy portal hosts registry alerts directory sso

# The lab's real peers, registered in the local portal (then `make run` shows them).
lab: system-packages venv-test assets var/keys.env
	@. ./var/keys.env && $(BIN)/python -m tests.lab up --register

lab-down: venv-test
	@$(BIN)/python -m tests.lab down

venv: $(VENV)/.installed
venv-test: $(VENV)/.installed-test

$(VENV)/.installed: pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt .
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt ".[test]"
	@touch $@

assets: node_modules/.installed
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	@touch $@

# Development keys, made once per checkout; variables already set win.
var/keys.env:
	@mkdir -p var
	@umask 077 && $(PYTHON) -c 'import base64, secrets; \
	print("export PORTAL_SECRET_KEY=\"$${PORTAL_SECRET_KEY:-" + secrets.token_urlsafe(50) + "}\""); \
	print("export PORTAL_ENCRYPTION_KEY=\"$${PORTAL_ENCRYPTION_KEY:-" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode() + "}\"")' > $@

# As root: install what is missing. Otherwise: name what is missing (the lab needs root anyway).
system-packages:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian packages:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else \
		echo "not root: Debian packages not installed:" $$missing; \
		echo "  the lab and the browser tests need them (and root): sudo apt-get install" $$missing; \
	fi

clean:
	rm -rf $(VENV) node_modules var/static
