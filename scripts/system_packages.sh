#!/usr/bin/env bash
# The Debian packages ablate's real-parts tests need, installed when missing (a no-op when all
# are present). Run as root, or with sudo available; elsewhere it says what to install.
#   chromium: the real browser that tests/tracking/test_browser.py drives through Playwright
#             (Playwright's own browser download is never used)
#   slurm-wlm, munge: the one-node Slurm cluster that tests/study/test_slurm.py starts
#             (tests/slurm.py: slurmctld, slurmd and munged on 127.0.0.1)
set -euo pipefail

# package -> a file it installs (present: nothing to do)
declare -A PACKAGES=(
  [chromium]=/usr/bin/chromium
  [slurm-wlm]=/usr/sbin/slurmctld
  [munge]=/usr/sbin/munged
)

missing=()
for package in "${!PACKAGES[@]}"; do
  [[ -e "${PACKAGES[$package]}" ]] || missing+=("$package")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
  run=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  run=(sudo -n)
else
  echo "system_packages.sh: missing ${missing[*]}; install as root: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "system_packages.sh: missing ${missing[*]} and no apt-get here; install them with this system's package manager" >&2
  exit 1
fi

echo "system_packages.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# another apt run (a second engineer, unattended upgrades) holds the lock: wait for it
lock=(-o DPkg::Lock::Timeout=600)
"${run[@]}" apt-get "${lock[@]}" update -qq
"${run[@]}" apt-get "${lock[@]}" install -y -qq --no-install-recommends "${missing[@]}"
