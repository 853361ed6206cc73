# iotsec front door. `make test` is the one command anyone needs (CI runs it).
#   make          build (hardened release build in build/)
#   make test     install missing packages, build, run every test: unit + e2e, the same
#                 unit tests under ASan+UBSan (build-san/), and each fuzz target briefly
#   make run      install, build, and run the platform (for now: the vault + HSM demo)
#   make bench    benchmarks with same-run reference figures
#   make fuzz     each fuzz target for FUZZ_SECONDS (default 60)
#   make testssl  testssl.sh against both iotsecd listeners (minutes; not part of make test)
#   make format   clang-format every C file
SHELL := /bin/bash
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 60
CTEST := ctest --output-on-failure -j $(JOBS)

.PHONY: all deps build build-san build-fuzz test test-unit test-san test-fuzz run bench fuzz testssl format check-format clean

all: build

deps:
	@scripts/install-deps

build:
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build -j $(JOBS)

build-san:
	@cmake -S . -B build-san -DCMAKE_BUILD_TYPE=Debug -DIOTSEC_SANITIZE=ON >/dev/null
	@cmake --build build-san -j $(JOBS)

build-fuzz:
	@CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIOTSEC_FUZZ=ON >/dev/null
	@cmake --build build-fuzz -j $(JOBS)

test: deps
	@$(MAKE) --no-print-directory check-format
	@$(MAKE) --no-print-directory build build-san build-fuzz
	@echo "== sanitizer build (ASan+UBSan): unit tests"
	@cd build-san && $(CTEST) -L unit
	@echo "== fuzz targets over their seed corpora"
	@cd build-fuzz && $(CTEST) -L fuzz
	@echo "== unit and end-to-end tests"
	@cd build && $(CTEST)

run: deps build
	@scripts/demo

bench: deps build
	@scripts/bench

fuzz: deps build-fuzz
	@for t in build-fuzz/fuzz_*; do \
	  name=$$(basename $$t); echo "== $$name for $(FUZZ_SECONDS)s"; \
	  fuzz/run-target $$t fuzz/corpus/$${name#fuzz_} $(FUZZ_SECONDS) || exit 1; \
	done

testssl: deps build
	@scripts/testssl

format:
	@git ls-files '*.c' '*.h' | xargs -r clang-format -i

check-format:
	@bad=$$(git ls-files '*.c' '*.h' | xargs -r clang-format --dry-run -Werror 2>&1 | grep -o '^[^:]*\.[ch]' | sort -u); \
	if [ -n "$$bad" ]; then echo "not clang-formatted (run make format): $$bad"; exit 1; fi

clean:
	rm -rf build build-san build-fuzz
