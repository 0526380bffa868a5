# Shared settings of the test cluster scripts (sourced by up, down and status).
# Everything the cluster writes (config, MariaDB, munge, Slurm state, logs) lives
# under one folder, $PADDLE_HPC_SLURM_DIR, that `down` removes.

set -euo pipefail

STATE_DIR=${PADDLE_HPC_SLURM_DIR:-/var/lib/paddle-hpc-slurm}
CLUSTER_NAME=paddlehpc
NODES=(n1 n2)
CPUS_PER_NODE=4
GPUS_PER_NODE=2
MEM_PER_NODE_MB=8000
CTLD_PORT=6817
DBD_PORT=6819
DB_PORT=3307
NODE_PORT_BASE=17000            # n1 listens on 17001, n2 on 17002
DB_USER=slurm
DB_PASS=paddle-hpc-test-only    # a loopback-only database of a throwaway cluster

ETC=$STATE_DIR/etc
LOG=$STATE_DIR/log
RUN=$STATE_DIR/run
MUNGE_SOCKET=$RUN/munge.socket
DB_SOCKET=$RUN/mariadb.sock
PODMAN_REPOSITORY=paddle-hpc-test  # slurm/podman-image's images, localhost/NAME:TAG
HOSTS_LINE="127.0.0.1 ${NODES[*]}  # paddle-hpc test cluster"
# Clients (sbatch, sinfo, submitit) find the cluster through the default path.
SYSTEM_CONF=/etc/slurm/slurm.conf
export SLURM_CONF=$ETC/slurm.conf

say() { printf '[slurm] %s\n' "$*" >&2; }
die() { printf '[slurm] error: %s\n' "$*" >&2; exit 1; }

# apt_install [OPTION...] PACKAGE...: apt-get install; fetches the package lists
# first when that fails, as on a machine whose lists were never fetched
apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "$@" >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null && apt-get install -y -q "$@" >/dev/null; }
}

# pid_alive FILE COMMAND: the pid in FILE names a running COMMAND (a pid file left
# behind by a stopped daemon may name another process by now).
pid_alive() {
    local pid
    [[ -s $1 ]] || return 1
    pid=$(cat "$1")
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$2" ]]
}

# stop_pidfile FILE COMMAND: TERM the process, wait up to 15 s, then KILL it.
stop_pidfile() {
    local file=$1 name=$2 pid i
    pid_alive "$file" "$name" || { rm -f "$file"; return 0; }
    pid=$(cat "$file")
    say "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 150); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$file"
}
