#!/usr/bin/env bash
# build/windows/connectivity-agent-VERSION.msi from build/windows/agent/connectivity-agent.exe
# (deploy/windows/build.sh), with wixl from Debian's msitools.
#   build-msi.sh [EXE] [OUT.msi] [VERSION]   (VERSION: default the project's; tests build a higher one
#                                            to try an upgrade)
set -euo pipefail
cd "$(dirname "$0")/../.."
project_version=$(sed -n 's/^project(connectivity-agent VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
exe=${1:-build/windows/agent/connectivity-agent.exe}
version=${3:-$project_version}
out=${2:-build/windows/connectivity-agent-$version.msi}
[ -f "$exe" ] || { echo "build-msi: no $exe (run deploy/windows/build.sh first)" >&2; exit 1; }
command -v wixl > /dev/null && command -v msibuild > /dev/null || bash deploy/install-deps.sh --windows

staging=$(mktemp -d)  # mktemp's own template, not a placeholder
trap 'rm -rf "$staging"' EXIT
# The installed default config is the agent's embedded one, with Windows line ends for Notepad.
sed 's/$/\r/' agent/default_config.toml > "$staging/agent.toml"
# wixl takes sources by relative names only: both files sit in the staging folder it runs in.
ln -s "$(realpath "$exe")" "$staging/connectivity-agent.exe"
wxs=$(realpath deploy/windows/connectivity-agent.wxs)

(cd "$staging" && wixl -a x64 -D Version="$version" -D AgentExe=connectivity-agent.exe -D DefaultConfig=agent.toml \
  -o agent.msi "$wxs") 2> "$staging/wixl.log" || {
  cat "$staging/wixl.log" >&2
  exit 1
}

# What wixl 0.101 has no attribute for, set in the tables directly (msibuild runs SQL on them):
# - the config's component is Permanent (16: uninstall leaves it) and NeverOverwrite (128: an
#   install or upgrade never replaces the admin's file), besides 64-bit (256);
# - an upgrade removes the old version first (RemoveExistingProducts right after InstallValidate),
#   so its firewall rule and service go before the new ones are added;
# - the properties an admin passes are secure: they reach the elevated part of the install.
msibuild "$staging/agent.msi" \
  -q "UPDATE Component SET Attributes = 400 WHERE Component = 'DefaultConfig'" \
  -q "UPDATE InstallExecuteSequence SET Sequence = 1450 WHERE Action = 'RemoveExistingProducts'" \
  -q "UPDATE Property SET Value = 'WIX_DOWNGRADE_DETECTED;WIX_UPGRADE_DETECTED;LISTEN;CONFIG;PROFILES;VARS;ROLES;LOG_FILE' WHERE Property = 'SecureCustomProperties'"

mkdir -p "$(dirname "$out")"
mv "$staging/agent.msi" "$out"
echo "built: $out ($(du -k "$out" | cut -f1) KiB)"
