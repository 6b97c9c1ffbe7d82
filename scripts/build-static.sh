#!/bin/sh
# Builds cc-relay as one fully static x86_64 Linux executable (static-pie, glibc linked
# in) that runs on any x86_64 Linux kernel with no libraries present: Alpine, BusyBox,
# distroless, `scratch` images, routers.
#
#   scripts/build-static.sh [--profile dist|static-test|release] [--out DIR]
#
# Default: the size-tuned `dist` profile, output in target/static/cc-relay. Environment:
# CARGO_TARGET_DIR is honoured; CC_RELAY_GIT_COMMIT overrides the commit read from git
# (for builds from a tarball). The musl target is not used because it cannot be
# installed on every build machine; `+crt-static` on the gnu target gives the same
# single file with the stable toolchain alone.
set -eu

profile=dist
out_dir=
while [ $# -gt 0 ]; do
    case "$1" in
        --profile) profile=${2:?--profile needs a value}; shift 2 ;;
        --out) out_dir=${2:?--out needs a value}; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-static.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
target=x86_64-unknown-linux-gnu
target_dir=${CARGO_TARGET_DIR:-$repo/target}
out_dir=${out_dir:-$target_dir/static}

if [ -z "${CC_RELAY_GIT_COMMIT:-}" ]; then
    if commit=$(git rev-parse HEAD 2>/dev/null); then
        # A binary built from uncommitted changes must say so in `cc-relay version`.
        if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
            commit="$commit-dirty"
        fi
    else
        commit=unknown
    fi
    CC_RELAY_GIT_COMMIT=$commit
fi
export CC_RELAY_GIT_COMMIT
export CC_RELAY_BUILD_PROFILE="$profile"
CC_RELAY_RUSTC_VERSION=$(rustc --version 2>/dev/null || echo unknown)
export CC_RELAY_RUSTC_VERSION

# --target keeps these flags off build scripts and proc-macros (serde_derive cannot be
# linked statically) and puts the output in its own directory, so a static build does
# not invalidate the normal dynamic one. The path remaps keep this machine's home and
# checkout paths out of the binary (panic locations), so two machines build the same
# bytes from the same commit.
cargo_home=${CARGO_HOME:-$HOME/.cargo}
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static --remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$repo=/cc-relay"
export RUSTFLAGS

echo "building cc-relay: profile $profile, target $target, static, commit $CC_RELAY_GIT_COMMIT" >&2
cargo build --locked --profile "$profile" --target "$target" --bin cc-relay

case "$profile" in
    dev) profile_dir=debug ;;
    *) profile_dir=$profile ;;
esac
built="$target_dir/$target/$profile_dir/cc-relay"
mkdir -p "$out_dir"
# Copy, then rename: a running copy of the old binary (or a second build) never sees a
# half-written file.
cp "$built" "$out_dir/cc-relay.tmp.$$"
mv -f "$out_dir/cc-relay.tmp.$$" "$out_dir/cc-relay"

# Refuse to hand out a binary that would need the host's libraries after all.
description=$(file -b "$out_dir/cc-relay" 2>/dev/null || echo "")
case "$description" in
    *"static-pie linked"*|*"statically linked"*) ;;
    "") echo "warning: 'file' is not installed; static linking not double-checked" >&2 ;;
    *) echo "error: $out_dir/cc-relay is not static: $description" >&2; exit 1 ;;
esac

"$out_dir/cc-relay" version >&2
size=$(wc -c < "$out_dir/cc-relay" | tr -d ' ')
echo "$out_dir/cc-relay: $size bytes" >&2
if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$out_dir/cc-relay" >&2
fi
echo "$out_dir/cc-relay"
