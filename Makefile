# floatd: common tasks. `make test` is the whole test suite (what CI runs).
CARGO ?= cargo

.PHONY: build test demo demo-witness bench lint release release-static fuzz chaos soak steady \
	sdk sdk-header sdk-check simulate

build:
	$(CARGO) build --bins

test:
	$(CARGO) build --bins
	$(CARGO) test --workspace --all-targets

# The deterministic simulation over more seeds than `make test` runs:
# make simulate SEEDS=100000 [FIRST=K]; one seed with its trace:
# FLOATD_SIM_SEED=N cargo test --test simulation -- --nocapture
SEEDS ?= 100000
FIRST ?= 0
simulate:
	FLOATD_SIM_SEEDS=$(SEEDS) FLOATD_SIM_FIRST=$(FIRST) $(CARGO) test --release --test simulation -- --nocapture

demo:
	bash scripts/demo.sh


demo-witness:
	bash scripts/demo-witness.sh

bench:
	$(CARGO) bench --bench floatd_bench

# The reliability run in network namespaces (root; docs/RELIABILITY.md):
# make chaos SEED=N DURATION=S MODE=witness|two-server|both [FLOODS=1]
SEED ?=
DURATION ?=
MODE ?= witness
chaos:
	SEED=$(SEED) DURATION=$(DURATION) MODE=$(MODE) bash scripts/chaos.sh $(if $(FLOODS),--floods)

# No false takeover at full load, no fault: make steady DURATION=600
steady:
	DURATION=$(or $(DURATION),600) bash scripts/steady.sh

# Repeated failovers and failbacks under thousands of holders: make soak DURATION=600
soak:
	SEED=$(SEED) DURATION=$(or $(DURATION),600) MODE=$(MODE) bash scripts/chaos.sh --soak --floods

# Coverage-guided fuzzing (docs/FUZZING.md): each target FUZZ_TIME seconds
# (CI runs 30 s each), under AddressSanitizer here.
FUZZ_TIME ?= 300
fuzz:
	FUZZ_SANITIZER=$${FUZZ_SANITIZER:-address} bash scripts/fuzz.sh $(FUZZ_TIME)

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The C SDK in one directory (docs/SDK.md): libfloatd_client.so and .a,
# floatd_client.h and floatd_client.pc. `make sdk SDK_DIR=/opt/floatd-sdk`.
SDK_DIR ?= target/sdk
sdk:
	bash sdk/dist.sh $(SDK_DIR)

# Regenerates sdk/floatd_client.h from sdk/src after an API change.
sdk-header:
	FLOATD_BLESS_HEADER=1 $(CARGO) test -p floatd-client --test header

# The SDK's tests alone (make test runs them too): header drift, the C API
# and the example (under valgrind), the Python package and its pip install.
sdk-check:
	$(CARGO) build --bins
	$(CARGO) test -p floatd-client
	$(CARGO) test --test sdk_c --test sdk_python

release:
	$(CARGO) build --release --bins
	@ls -l target/release/floatd target/release/floatctl target/release/floatd-load

# Static-pie binaries that need no libc on the host (docs/OPERATIONS.md).
# The explicit --target keeps build scripts and proc-macros dynamic. Static
# glibc cannot dlsym getrandom, so take randomness from the syscall
# directly rather than from getrandom's /dev/urandom fallback.
STATIC_TARGET ?= x86_64-unknown-linux-gnu
release-static:
	RUSTFLAGS='-C target-feature=+crt-static --cfg getrandom_backend="linux_getrandom"' \
	  $(CARGO) build --release --bins --target $(STATIC_TARGET)
	@ls -l target/$(STATIC_TARGET)/release/floatd target/$(STATIC_TARGET)/release/floatctl
