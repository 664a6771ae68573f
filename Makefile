# floatd: common tasks. `make test` is the whole test suite (what CI runs).
CARGO ?= cargo

.PHONY: build test demo demo-witness bench lint release

build:
	$(CARGO) build --bins

test:
	$(CARGO) build --bins
	$(CARGO) test --all-targets

demo:
	bash scripts/demo.sh

demo-witness:
	bash scripts/demo-witness.sh

bench:
	$(CARGO) bench --bench floatd_bench

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

release:
	$(CARGO) build --release --bins
	@ls -l target/release/floatd target/release/floatctl target/release/floatd-load
