#!/bin/sh
# Copies the workspace's manifests to OUT_DIR with stub sources in place of
# every build target, so that the Dockerfile can compile the dependencies in
# a layer of their own. The skeleton changes only when a manifest or the lock
# file does: editing sources reuses the cached dependency layer.
#
# Finds the packages by their Cargo.toml, so a crate added to the workspace
# needs no change here. Build scripts are copied as they are.
#
# Usage: cargo-skeleton.sh OUT_DIR   (run from the workspace root)
set -eu

out=${1:?usage: cargo-skeleton.sh OUT_DIR}
mkdir -p "$out"
cp Cargo.toml Cargo.lock "$out/"
for extra in rust-toolchain.toml .cargo/config.toml; do
    if [ -f "$extra" ]; then
        mkdir -p "$out/$(dirname "$extra")"
        cp "$extra" "$out/$extra"
    fi
done

stub() {
    # stub FILE CONTENT: an empty library root or a `fn main() {}` binary root.
    mkdir -p "$out/$(dirname "$1")"
    printf '%s\n' "$2" > "$out/$1"
}

find . -path ./target -prune -o -path ./.git -prune -o -name Cargo.toml -print | sort |
    while read -r manifest; do
        [ "$manifest" = ./Cargo.toml ] && continue
        dir=$(dirname "$manifest")
        mkdir -p "$out/$dir"
        cp "$manifest" "$out/$manifest"
        if [ -f "$dir/build.rs" ]; then
            cp "$dir/build.rs" "$out/$dir/build.rs"
        fi
        # Targets cargo discovers by convention...
        if [ -f "$dir/src/lib.rs" ]; then
            stub "$dir/src/lib.rs" '// dependency-layer stub'
        fi
        find "$dir/src" "$dir/tests" "$dir/benches" "$dir/examples" \
            \( -path "$dir/src/main.rs" -o -path "$dir/src/bin/*.rs" \
            -o -path "$dir/tests/*.rs" -o -path "$dir/benches/*.rs" -o -path "$dir/examples/*.rs" \) \
            -print 2>/dev/null |
            while read -r target; do
                # Only target roots: src/bin/x.rs, src/bin/x/main.rs, tests/x.rs,
                # tests/x/main.rs; helper modules such as tests/common/mod.rs are skipped.
                case "${target#"$dir"/}" in
                    src/main.rs | src/bin/*.rs | tests/*.rs | benches/*.rs | examples/*.rs)
                        rel=${target#"$dir"/}
                        sub=${rel#*/}
                        case "$rel" in
                            src/bin/*) sub=${rel#src/bin/} ;;
                        esac
                        case "$sub" in
                            */*) [ "${sub#*/}" = main.rs ] || continue ;;
                        esac
                        stub "$target" 'fn main() {}'
                        ;;
                esac
            done
        # ...and those the manifest names by path (`path = "src/main.rs"`).
        sed -n 's/^[[:space:]]*path[[:space:]]*=[[:space:]]*"\([^"]*\.rs\)".*/\1/p' "$manifest" |
            while read -r path; do
                if [ ! -f "$out/$dir/$path" ]; then
                    stub "$dir/$path" 'fn main() {}'
                fi
            done
    done
