# shellcheck shell=bash
# Shared helpers for scripts/kafka and scripts/test.  Source it; it defines
# functions only (no side effects besides a couple of variables).

# Cache root shared by the Kafka harness and the cargo target dir.
MOTSTREAM_CACHE=${MOTSTREAM_CACHE:-$HOME/.cache/motstream}

ms_log() { printf '%s\n' "$*" >&2; }
ms_die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# Microseconds since the epoch (bash 5 EPOCHREALTIME; the separator is
# locale-dependent, so strip both '.' and ',').
ms_now_us() {
  local t=${EPOCHREALTIME//[.,]/}
  printf '%s\n' "$((10#$t))"
}

# Format a microsecond duration as seconds with one decimal, e.g. 12.3s.
ms_fmt_us() {
  local us=$1
  printf '%d.%ds' "$((us / 1000000))" "$(((us % 1000000) / 100000))"
}

# Prints the given Debian packages that are not installed, one a line.
ms_missing_apt_packages() {
  local p
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
      printf '%s\n' "$p"
    fi
  done
}

# Installs the given Debian packages that are missing.  Does nothing (and
# never touches apt) when all of them are present.  apt-get update runs at
# most once per process.
MS_APT_UPDATED=${MS_APT_UPDATED:-0}
ms_apt_install() {
  local missing=()
  mapfile -t missing < <(ms_missing_apt_packages "$@")
  ((${#missing[@]})) || return 0
  command -v apt-get >/dev/null || ms_die "missing packages (${missing[*]}) and no apt-get to install them"
  local sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null || ms_die "missing packages (${missing[*]}); run as root or install sudo"
    sudo=(sudo)
  fi
  ms_log "installing Debian packages: ${missing[*]}"
  # Wait for a concurrent apt/dpkg (another engineer's install) instead of failing.
  local apt_opts=(-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
  if [[ $MS_APT_UPDATED != 1 ]]; then
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" -qq update
    MS_APT_UPDATED=1
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" -qq install -y --no-install-recommends "${missing[@]}" >/dev/null
}

# Java for the broker: $JAVA, else /usr/bin/java, else java on PATH.
ms_find_java() {
  if [[ -n ${JAVA:-} && -x $JAVA ]]; then
    printf '%s\n' "$JAVA"
  elif [[ -x /usr/bin/java ]]; then
    printf '%s\n' /usr/bin/java
  elif command -v java >/dev/null; then
    command -v java
  else
    return 1
  fi
}
