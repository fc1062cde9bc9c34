# ib: build, test, and cross-compile the binaries the server offers.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X ib/cmd.Version=$(VERSION)
DIST    ?= dist
PLATFORMS := linux/amd64 linux/arm64 linux/386 linux/arm darwin/amd64 darwin/arm64 windows/amd64 windows/arm64 windows/386

.PHONY: build test dist clean

build:
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o ib .

test:
	go test ./...

# Every OS and architecture, with SHA256SUMS, into $(DIST): serve them with
# `ib server serve --dist-dir $(DIST)`.
dist:
	mkdir -p $(DIST)
	set -e; for p in $(PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; ext=; [ $$os = windows ] && ext=.exe; \
	  echo "  $$os/$$arch"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch go build -trimpath -ldflags "$(LDFLAGS)" -o $(DIST)/ib-$$os-$$arch$$ext . ; \
	done
	cd $(DIST) && sha256sum ib-* > SHA256SUMS

clean:
	rm -rf ib $(DIST)
