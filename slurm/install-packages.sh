#!/usr/bin/env bash
# Installs the Debian packages of the test cluster when any is missing, without
# letting the packages start their own system services (up starts ours).
set -euo pipefail

needed=(slurmctld slurmd slurmdbd sbatch munged mariadbd mariadb-install-db)
missing=0
for cmd in "${needed[@]}"; do
    command -v "$cmd" >/dev/null || PATH=$PATH:/usr/sbin command -v "$cmd" >/dev/null || missing=1
done
[[ $missing == 0 ]] && exit 0

[[ $(id -u) == 0 ]] || { echo "[slurm] error: installing Slurm needs root (apt-get)" >&2; exit 1; }
echo "[slurm] installing slurm-wlm, slurmdbd, munge and mariadb-server (a minute or two)" >&2

guard=/usr/sbin/policy-rc.d
own_guard=0
if [[ ! -e $guard ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$guard"
    chmod +x "$guard"
    own_guard=1
fi
trap '[[ $own_guard == 1 ]] && rm -f "$guard"' EXIT

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
    slurm-wlm slurmdbd slurm-client munge mariadb-server mariadb-client >/dev/null
