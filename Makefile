# postoffice: build, run and test. `make help` lists the targets.

GO         ?= go
BIN        := bin
DATA       ?= ./var
FUZZTIME   ?= 30s
TESTFLAGS  ?=
# staticcheck, pinned; fetched through the Go module proxy on first use.
STATICCHECK_VERSION := v0.8.2

RUN_FLAGS := --data $(DATA) \
	--imap 127.0.0.1:1143 --imaps 127.0.0.1:1993 \
	--pop3 127.0.0.1:1110 --pop3s 127.0.0.1:1995 \
	--plaintext-auth-nets 127.0.0.0/8,::1/128

.PHONY: all help build run test test-short fuzz lint bench bench-vs-dovecot soak clean

all: build

help:
	@echo "make build       build bin/postofficed and bin/postoffice"
	@echo "make run         run postofficed on $(DATA) with loopback ports 1143/1993 (IMAP) and 1110/1995 (POP3)"
	@echo "make test        all tests with -race (PostgreSQL found, or started when initdb is installed)"
	@echo "make test-short  quick tests without the race detector, binaries or external clients"
	@echo "make fuzz        every Fuzz target for FUZZTIME (default 30s) each"
	@echo "make lint        gofmt, go vet, staticcheck $(STATICCHECK_VERSION)"
	@echo "make bench       benchmarks"
	@echo "make bench-vs-dovecot  load runs against Dovecot from Debian on the same corpus (root; QUICK=1 for a short run)"
	@echo "make soak        the chaos soak for DURATION (default 10m)"
	@echo "make clean       remove bin/ (not $(DATA))"

build:
	$(GO) build -o $(BIN)/ ./cmd/postofficed ./cmd/postoffice

run: build
	@echo "postofficed is starting on $(DATA) (embedded SQLite index, self-signed TLS certificate)."
	@echo
	@echo "  Add a user (in another terminal):  $(BIN)/postoffice --data $(DATA) user add alice"
	@echo "  IMAP:  127.0.0.1:1143 (STARTTLS) or 127.0.0.1:1993 (TLS); POP3: 127.0.0.1:1110 (STLS) or 127.0.0.1:1995 (TLS)"
	@echo "  Try:   openssl s_client -quiet -connect 127.0.0.1:1993    then    a LOGIN alice PASSWORD"
	@echo "  Stop with Ctrl-C."
	@echo
	$(BIN)/postofficed $(RUN_FLAGS)

# -timeout: the PostgreSQL variants and the process tests take a while on a
# small machine; the default 10m per package is too tight with -race.
test:
	@.ci/with-postgres $(GO) test -race -shuffle=on -timeout 25m $(TESTFLAGS) ./...

test-short:
	$(GO) test -short -timeout 10m $(TESTFLAGS) ./...

fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$f ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

lint:
	@rc=0; \
	echo "== gofmt"; out=$$(gofmt -l .); \
	if [ -n "$$out" ]; then echo "not gofmt-ed:"; echo "$$out"; rc=1; fi; \
	echo "== go vet"; $(GO) vet ./... || rc=1; \
	echo "== staticcheck $(STATICCHECK_VERSION)"; \
	if GOBIN=$(CURDIR)/$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) 2>/dev/null; then \
		$(BIN)/staticcheck ./... || rc=1; \
	else \
		echo "!!! staticcheck $(STATICCHECK_VERSION) could not be fetched from the module proxy: SKIPPED"; \
	fi; \
	exit $$rc

bench:
	$(GO) test -run '^$$' -bench . -benchmem -timeout 30m ./...

# Needs root: it installs and runs Dovecot through shared/peers/dovecot-peer.sh.
bench-vs-dovecot:
	bash bench/bench-vs-dovecot.sh

# The chaos soak runs its own throwaway PostgreSQL (initdb/pg_ctl). No -race:
# the long soak measures CPU; `make test` runs the 60 s version with -race.
DURATION     ?= 10m
SOAK_TIMEOUT ?= 3h
soak:
	SOAK_DURATION=$(DURATION) $(GO) test -run '^TestSoak$$' -count=1 -v -timeout $(SOAK_TIMEOUT) $(TESTFLAGS) ./testsuite/

clean:
	rm -rf $(BIN)
