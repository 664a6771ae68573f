#!/usr/bin/env bash
# Builds the C SDK and puts it in one directory: libfloatd_client.so,
# libfloatd_client.a, floatd_client.h and floatd_client.pc (`make sdk`).
#
#   sdk/dist.sh OUT_DIR [PROFILE]
#
# PROFILE is a cargo profile: release-sdk (the default: optimised, panics
# caught at the C boundary) or dev (quick, for tests).
set -euo pipefail
out=${1:?usage: sdk/dist.sh OUT_DIR [PROFILE]}
profile=${2:-release-sdk}
cd "$(dirname "$0")/.."
${CARGO:-cargo} build --quiet -p floatd-client --lib --profile "$profile"
target=${CARGO_TARGET_DIR:-target}
case $profile in
  dev) built=$target/debug ;;
  *) built=$target/$profile ;;
esac
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' sdk/Cargo.toml | head -n1)
mkdir -p "$out"
cp "$built/libfloatd_client.so" "$built/libfloatd_client.a" sdk/floatd_client.h "$out/"
sed "s/@VERSION@/$version/" sdk/floatd_client.pc.in >"$out/floatd_client.pc"
echo "floatd client SDK $version in $out:"
ls -1 "$out"
