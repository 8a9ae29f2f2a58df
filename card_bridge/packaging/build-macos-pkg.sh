#!/bin/sh
# The macOS installer of the Mynagate card bridge, dist/mynagate-card-bridge-<v>.pkg.
# Run on a Mac (pkgbuild is part of Xcode's command line tools), from the repository root:
#
#   python3 -m pip install pyinstaller pyscard
#   PROVIDER_ORIGIN=https://id.example.ed.jp sh card_bridge/packaging/build-macos-pkg.sh
#
# It installs the PyInstaller folder in /Library/Application Support/Mynagate/card-bridge/
# and a LaunchAgent (/Library/LaunchAgents/jp.mynagate.card-bridge.plist) that starts the
# bridge at every login. Set SIGN_IDENTITY="Developer ID Installer: ..." to sign the package
# (then notarize it with `xcrun notarytool`); an unsigned package must be opened with
# right-click > Open. See docs/card-bridge.md, "Installers".
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ORIGIN=${PROVIDER_ORIGIN:-}
case "$ORIGIN" in
  https://*/*|https://*\?*|https://*" "*|https://*"#"*|https://*"&"*) echo "PROVIDER_ORIGIN is https://host[:port], nothing after it" >&2; exit 2 ;;
  https://?*) ;;
  *) echo "set PROVIDER_ORIGIN=https://your-provider (the school's Mynagate origin)" >&2; exit 2 ;;
esac
VERSION=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$ROOT/card_bridge/__init__.py")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

if [ "${SKIP_PYINSTALLER:-}" != "1" ]; then
  (cd "$ROOT" && python3 -m PyInstaller --noconfirm --distpath "$WORK/dist" \
      --workpath "$WORK/build" card_bridge/packaging/mynagate-card-bridge.spec)
  BUILT="$WORK/dist/mynagate-card-bridge"
else
  BUILT=${BUILT:-"$ROOT/dist/mynagate-card-bridge"}
fi
[ -x "$BUILT/mynagate-card-bridge" ] || { echo "no PyInstaller build in $BUILT" >&2; exit 1; }

PAYLOAD="$WORK/payload"
mkdir -p "$PAYLOAD/Library/Application Support/Mynagate" "$PAYLOAD/Library/LaunchAgents"
cp -R "$BUILT" "$PAYLOAD/Library/Application Support/Mynagate/card-bridge"
sed "s#__PROVIDER_ORIGIN__#$ORIGIN#" "$HERE/macos/jp.mynagate.card-bridge.plist" \
  > "$PAYLOAD/Library/LaunchAgents/jp.mynagate.card-bridge.plist"
mkdir -p "$WORK/scripts"
cp "$HERE/macos/postinstall" "$WORK/scripts/postinstall"
chmod 755 "$WORK/scripts/postinstall"

OUT_DIR=${OUT_DIR:-"$ROOT/dist"}
mkdir -p "$OUT_DIR"
OUT="$OUT_DIR/mynagate-card-bridge-$VERSION.pkg"
set -- --root "$PAYLOAD" --scripts "$WORK/scripts" --identifier jp.mynagate.card-bridge \
  --version "$VERSION" --install-location /
if [ -n "${SIGN_IDENTITY:-}" ]; then set -- "$@" --sign "$SIGN_IDENTITY"; fi
pkgbuild "$@" "$OUT"
echo "$OUT"
