#!/usr/bin/env bash
# After ../shared/device/prepare: repacks .device/node_modules.tar.xz without what a run never reads (packages' tests,
# docs, source maps, TypeScript sources and declarations: 8.5 -> 5.3 MB), strips Node.js's symbol table and debug
# information (the dynamic symbols addons such as koffi bind to stay) and recompresses .device/node.xz with xz's
# strongest preset (27.1 -> 21.9 MB, about 80 s here), so that a device call's tree (the tracked files, ~36 MiB on
# disk, and .device) stays under the 64 MiB limit, which counts disk blocks, with room for .fixtures. Run from the
# project root.
set -euo pipefail
archive=.device/node_modules.tar.xz
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
xz -dc "$archive" | tar -x -C "$work"
find "$work/node_modules" -type d \( -name test -o -name tests -o -name __tests__ -o -name docs -o -name example \
  -o -name examples -o -name benchmark \) -prune -exec rm -rf {} +
# TypeScript sources (declarations included): packages are loaded from their built JavaScript.
find "$work/node_modules" -type f \( -name '*.md' -o -name '*.markdown' -o -name '*.map' -o -name '*.ts' \
  -o -name '*.mts' -o -name '*.cts' \) -delete
before=$(stat -c %s "$archive")
tar -c -C "$work" node_modules | xz -9 -T0 > "$archive.new"
mv "$archive.new" "$archive"
echo "$archive: $before -> $(stat -c %s "$archive") bytes"
before=$(stat -c %s .device/node.xz)
xz -dc .device/node.xz > "$work/node"
strip "$work/node"
xz -9e -T0 -c "$work/node" > "$work/node.xz"
mv "$work/node.xz" .device/node.xz
echo ".device/node.xz: $before -> $(stat -c %s .device/node.xz) bytes"
