#!/usr/bin/env bash
# A real SLURM cluster with accounting on this machine, one node or several, for testing
# `scalelab sbatch`.
#
#   scripts/local-slurm.sh up [--nodes N]
#                                   start munged, MariaDB, slurmdbd, slurmctld and N slurmd's (one
#                                   per node, default 1); wait until every node is idle and sacct
#                                   answers; print how to use the cluster
#   scripts/local-slurm.sh down     cancel the jobs, stop every daemon `up` started, remove the
#                                   state folder and the config files `up` installed
#   scripts/local-slurm.sh status   which daemons run, the nodes and the queue
#   scripts/local-slurm.sh crash-node NODE
#                                   simulate a node failure: kill -9 NODE's slurmd and every process
#                                   of its jobs; SLURM marks it DOWN after SlurmdTimeout (30 s) and
#                                   its jobs NODE_FAIL; `up` brings it back
#
# Needs root and Debian 12's packages (scripts/install-deps.sh --slurm). Idempotent: `up` starts only
# what is not running (and removes pid files left by a crash); `up` on a running cluster is a check.
#
# Where things are:
#   state     ${SCALELAB_SLURM_DIR:-/tmp/scalelab-slurm}: MariaDB data, slurmctld state, slurmd spool,
#             pid files and logs (log/), all removed by `down`.
#   config    /etc/slurm/{slurm,cgroup,slurmdbd}.conf, so that plain `sbatch`, `squeue`, `sacct` work
#             with no environment. Each file's first line names this script and the state folder;
#             `down` removes only those files. If /etc/slurm/slurm.conf exists without that line (a
#             real SLURM installation, or the cluster of another state folder), /etc is not touched:
#             the files go to <state>/etc and `up` prints the `export SLURM_CONF=...` to use.
#             SCALELAB_SLURM_ETC=<folder> chooses the folder explicitly.
#   munge     the system key /etc/munge/munge.key (created when missing) and the default socket
#             /run/munge/munge.socket.2; a munged that already answers there is used, not restarted.
#   daemons   slurmctld, slurmd and slurmdbd run as root (SlurmUser=root, so slurmdbd.conf is root's,
#             mode 600): no second account to keep in step; jobs submitted by root run as root.
#             MariaDB runs as `mysql` on 127.0.0.1:${SCALELAB_SLURM_DB_PORT:-13306} with its own data
#             folder (not /var/lib/mysql). SLURM's own ports: 6817 (slurmctld), 6818, 6819 (slurmdbd).
#
# Cluster: ClusterName=scalelab.
#   --nodes 1 (default): one node, this host (its CPUs and memory from `slurmd -C`), slurmd on 6818.
#   --nodes N: N nodes node1..nodeN on this one host through SLURM's multiple-slurmd support
#     (`slurmd -N nodeK`, each with its own port 6830+K, spool, tmp, pid file and log). The machine
#     is shared honestly: each node counts CPUs/N of the cores (N may not exceed the CPUs) and
#     memory/N, so the cluster never hands out more cores or memory than the machine has. Jobs are
#     not pinned to "their" cores: SLURM numbers every node's CPUs from 0 and sees the whole machine
#     through hwloc, so binding would put every node on core 0; instead (TaskPlugin=task/cgroup,
#     ConstrainCores=no) the kernel spreads the nodes' tasks over the cores, memory stays limited
#     per job. Every node still shares one memory bus, one network stack (MPI between "nodes" is
#     shared memory, not a network) and one file system.
# Two partitions of different shapes: `debug` (every node, Default, MaxTime=INFINITE) and `short`
# (the last node only, MaxTime=00:10:00, MaxNodes=1), so partition choice and per-partition limits
# are exercised. select/cons_tres with CR_Core_Memory (DefMemPerCPU =
# memory / CPUs, so a job without --mem does not take the whole node), proctrack/cgroup and
# task/cgroup,task/affinity with RAM and swap constrained (a job over --mem is OOM-killed:
# OUT_OF_MEMORY in sacct), jobacct_gather/cgroup, MaxArraySize=10001, MinJobAge=30, KillWait=5 and
# OverTimeLimit=0 (a job over --time=1 ends as TIMEOUT about 90 s after it starts: slurmctld checks
# limits every 30 s). MPI: MpiDefault=pmix, so `srun ./prog` starts OpenMPI ranks; `mpirun` inside
# an `sbatch -n N` allocation works too (as root with --allow-run-as-root).
#
# `up` takes about 10 s from scratch on a 2-core machine (a few seconds more per node); `down`
# about 10 s.
set -euo pipefail
# No `cmd | grep -q` or `cmd | head`: under pipefail, cmd dying of SIGPIPE when the reader stops
# early would make a success look like a failure (it did: MpiDefault came out `none` at random).

STATE="${SCALELAB_SLURM_DIR:-/tmp/scalelab-slurm}"
CLUSTER="${SCALELAB_SLURM_CLUSTER:-scalelab}"
PARTITION="debug"
# The second partition: the last node alone, with a time limit.
SHORT_PARTITION="short"
SHORT_MAXTIME="00:10:00"
# Nodes `up` starts (--nodes).
NODES=1
DB_PORT="${SCALELAB_SLURM_DB_PORT:-13306}"
# First line of every config file this script writes; `down` removes the files with its own state
# folder in that line, and `up` never overwrites a file without the prefix.
MARKER_PREFIX="# Written by scalelab scripts/local-slurm.sh"
MARKER="$MARKER_PREFIX for $STATE; removed by its \`down\`. Do not edit."

MUNGE_KEY=/etc/munge/munge.key
MUNGE_SOCKET_DIR=/run/munge
# Seconds to wait for each SLURM daemon and for the node (slurmdbd creates its tables on its first
# start; the machine may be busy compiling).
UP_TIMEOUT=120

log() { printf '[local-slurm] %s\n' "$*"; }
die() {
    printf '[local-slurm] error: %s\n' "$*" >&2
    exit 1
}

usage() {
    sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

# fail MESSAGE [LOGFILE...]: die, showing the end of the logs that explain why.
fail() {
    local msg=$1 f
    shift
    printf '[local-slurm] error: %s\n' "$msg" >&2
    for f in "$@"; do
        if [[ -s $f ]]; then
            printf '[local-slurm] --- last lines of %s ---\n' "$f" >&2
            tail -n 25 "$f" >&2
        fi
    done
    exit 1
}

# The config folder: /etc/slurm unless a real SLURM installation lives there (see the header).
# Sets ETC and, for every SLURM command this script runs, SLURM_CONF.
ETC=""
choose_etc() {
    if [[ -n ${SCALELAB_SLURM_ETC:-} ]]; then
        ETC="$SCALELAB_SLURM_ETC"
    elif [[ -f /etc/slurm/slurm.conf ]] && ! is_this_state /etc/slurm/slurm.conf; then
        # A real installation, or the cluster of another state folder: leave it alone.
        ETC="$STATE/etc"
    else
        ETC=/etc/slurm
    fi
    export SLURM_CONF="$ETC/slurm.conf"
}

is_ours() { [[ -f $1 ]] && [[ "$(head -n 1 "$1")" == "$MARKER_PREFIX"* ]]; }
is_this_state() { [[ -f $1 ]] && [[ "$(head -n 1 "$1")" == "$MARKER" ]]; }

need_root_and_packages() {
    [[ $EUID -eq 0 ]] || die "run as root: the daemons need root (slurmd, cgroups, /run/munge)"
    local exe missing=()
    for exe in munged munge unmunge mariadbd mariadb-install-db mariadb mariadb-admin \
        slurmdbd slurmctld slurmd sacctmgr sinfo sacct scontrol; do
        command -v "$exe" >/dev/null 2>&1 || missing+=("$exe")
    done
    [[ ${#missing[@]} -eq 0 ]] ||
        die "missing ${missing[*]}: install the packages with scripts/install-deps.sh --slurm"
    [[ $STATE != *[[:space:]]* ]] || die "SCALELAB_SLURM_DIR must not contain spaces ('$STATE')"
    [[ $STATE == /* ]] || die "SCALELAB_SLURM_DIR must be an absolute path ('$STATE')"
}

# ---------------------------------------------------------------------------------------------
# Processes. Every daemon writes a pid file under the state folder; a daemon counts as running
# when its pid file names a live process with the expected name (a stale file is removed).
# ---------------------------------------------------------------------------------------------

pidfile_of() {
    case "$1" in
        munged) echo "$STATE/munge/munged.pid" ;;
        mariadbd) echo "$STATE/mysql/mariadbd.pid" ;;
        *) echo "$STATE/run/$1.pid" ;;
    esac
}

logfile_of() {
    case "$1" in
        munged) echo "$STATE/munge/munged.log" ;;
        mariadbd) echo "$STATE/mysql/mariadbd.log" ;;
        *) echo "$STATE/log/$1.log" ;;
    esac
}

# running_pid NAME: print the pid and succeed when NAME runs from our pid file. A node's slurmd is
# named slurmd-<node> (its pid file and log too); its process is called slurmd.
running_pid() {
    local f pid
    f="$(pidfile_of "$1")"
    [[ -s $f ]] || return 1
    pid="$(tr -dc '0-9' <"$f")"
    [[ -n $pid && -r /proc/$pid/comm && "$(cat "/proc/$pid/comm")" == "${1%%-*}" ]] || return 1
    # A killed daemon stays a zombie until its parent reaps it: that is not running either.
    [[ "$(sed 's/.*) \(.\).*/\1/' "/proc/$pid/stat" 2>/dev/null)" != Z ]] || return 1
    echo "$pid"
}

# clear_stale NAME: remove a pid file whose process is gone (after a crash or a reboot).
clear_stale() {
    local f
    f="$(pidfile_of "$1")"
    if [[ -e $f ]] && ! running_pid "$1" >/dev/null; then
        log "removing stale pid file $f"
        rm -f "$f"
    fi
}

# The slurmd's that have a pid file under the state folder (running or left by a crash), as
# daemon names slurmd-<node>: what `down`, `status` and crash clean-up cover, whatever --nodes was.
slurmd_daemons() {
    local f
    for f in "$STATE"/run/slurmd-*.pid; do
        [[ -e $f ]] || continue
        f="${f##*/}"
        echo "${f%.pid}"
    done
}

# wait_until SECONDS WHAT NAME CMD...: poll CMD until it succeeds; fail with NAME's log when the
# time runs out or NAME (a daemon) dies meanwhile.
wait_until() {
    local secs=$1 what=$2 name=$3 i
    shift 3
    for ((i = 0; i < secs * 2; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        if ((i >= 6)) && ! running_pid "$name" >/dev/null; then
            fail "$name exited while waiting for $what" "$(logfile_of "$name")"
        fi
        sleep 0.5
    done
    fail "$what: not ready after ${secs}s" "$(logfile_of "$name")"
}

# stop_daemon NAME: SIGTERM, then SIGKILL after 30 s. Only daemons with our pid file.
stop_daemon() {
    local pid i
    if ! pid="$(running_pid "$1")"; then
        rm -f "$(pidfile_of "$1")"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 60; i++)); do
        [[ -d /proc/$pid ]] || break
        sleep 0.5
    done
    if [[ -d /proc/$pid ]]; then
        log "$1 (pid $pid) ignored SIGTERM for 30 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 1
    fi
    rm -f "$(pidfile_of "$1")"
    log "stopped    $1 (pid $pid)"
}

# ---------------------------------------------------------------------------------------------
# munge
# ---------------------------------------------------------------------------------------------

munge_answers() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
    if [[ ! -s $MUNGE_KEY ]]; then
        install -d -o munge -g munge -m 700 "$(dirname "$MUNGE_KEY")"
        if command -v mungekey >/dev/null 2>&1; then
            mungekey --create --keyfile="$MUNGE_KEY"
        else
            dd if=/dev/urandom of="$MUNGE_KEY" bs=1 count=1024 status=none
        fi
        chown munge:munge "$MUNGE_KEY"
        chmod 400 "$MUNGE_KEY"
        log "created    munge key $MUNGE_KEY"
    fi
    clear_stale munged
    local pid
    if pid="$(running_pid munged)"; then
        log "ok         munged (pid $pid)"
        return 0
    fi
    if munge_answers; then
        log "ok         munged (not started by this script; left alone by \`down\`)"
        return 0
    fi
    # munged refuses folders that others can write to; both belong to the munge account.
    install -d -o munge -g munge -m 755 "$MUNGE_SOCKET_DIR"
    install -d -o munge -g munge -m 700 "$STATE/munge"
    runuser -u munge -- munged \
        --key-file="$MUNGE_KEY" \
        --socket="$MUNGE_SOCKET_DIR/munge.socket.2" \
        --pid-file="$(pidfile_of munged)" \
        --log-file="$(logfile_of munged)" \
        --seed-file="$STATE/munge/munged.seed" </dev/null >>"$STATE/log/munged.out" 2>&1 ||
        fail "munged did not start" "$STATE/log/munged.out" "$(logfile_of munged)"
    wait_until 20 "munge (munge -n | unmunge)" munged munge_answers
    log "started    munged (pid $(running_pid munged))"
}

# ---------------------------------------------------------------------------------------------
# MariaDB: a private server for slurmdbd, data under the state folder, TCP on 127.0.0.1 only.
# ---------------------------------------------------------------------------------------------

DB_SOCKET=""
DB_PASS=""

db() { mariadb --no-defaults --socket="$DB_SOCKET" -u root "$@"; }

start_mariadb() {
    local dir="$STATE/mysql"
    DB_SOCKET="$dir/mariadbd.sock"
    clear_stale mariadbd
    install -d -o mysql -g mysql -m 750 "$dir"
    if [[ ! -d $dir/data/mysql ]]; then
        rm -rf "$dir/data"
        install -d -o mysql -g mysql -m 750 "$dir/data"
        if ! mariadb-install-db --no-defaults --user=mysql --datadir="$dir/data" \
            --auth-root-authentication-method=socket --skip-test-db >"$STATE/log/mariadb-install-db.log" 2>&1; then
            rm -rf "$dir/data"
            fail "mariadb-install-db failed" "$STATE/log/mariadb-install-db.log"
        fi
        log "created    MariaDB data folder $dir/data"
    fi
    local pid
    if pid="$(running_pid mariadbd)"; then
        log "ok         mariadbd (pid $pid, port $DB_PORT)"
    else
        # mariadbd stays in the foreground; setsid detaches it from this shell and its terminal.
        # The buffer pool, log size and lock wait: the smallest values slurmdbd does not warn about
        # ("Database settings not recommended values").
        setsid mariadbd --no-defaults --user=mysql \
            --datadir="$dir/data" \
            --socket="$DB_SOCKET" \
            --pid-file="$(pidfile_of mariadbd)" \
            --log-error="$(logfile_of mariadbd)" \
            --bind-address=127.0.0.1 --port="$DB_PORT" \
            --skip-name-resolve \
            --innodb-buffer-pool-size=512M \
            --innodb-log-file-size=64M \
            --innodb-lock-wait-timeout=900 \
            </dev/null >>"$STATE/log/mariadbd.out" 2>&1 &
        wait_until 60 "MariaDB (mariadb-admin ping)" mariadbd \
            mariadb-admin --no-defaults --socket="$DB_SOCKET" -u root ping
        log "started    mariadbd (pid $(running_pid mariadbd), port $DB_PORT)"
    fi
    # The slurmdbd account: one password per state folder, kept beside the data.
    local passfile="$dir/slurmdbd.pass"
    if [[ ! -s $passfile ]]; then
        (umask 077 && head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$passfile")
    fi
    DB_PASS="$(<"$passfile")"
    db -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
           CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
           CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
           ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
           ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
           GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
           GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';" 2>"$STATE/log/mariadb-setup.log" ||
        fail "could not create the database slurm_acct_db and its user" "$STATE/log/mariadb-setup.log" "$(logfile_of mariadbd)"
}

# ---------------------------------------------------------------------------------------------
# Config files
# ---------------------------------------------------------------------------------------------

# install_conf PATH MODE: write stdin to PATH (with the marker line first) when it differs.
# Refuses to overwrite a file without the marker. Sets CONF_CHANGED=1 when it wrote.
CONF_CHANGED=0
install_conf() {
    local path=$1 mode=$2 tmp
    if [[ -e $path ]] && ! is_ours "$path"; then
        die "$path exists and was not written by this script; set SCALELAB_SLURM_ETC to another folder"
    fi
    tmp="$(mktemp "$path.XXXXXX")"
    { printf '%s\n' "$MARKER"; cat; } >"$tmp"
    chmod "$mode" "$tmp"
    if [[ -f $path ]] && cmp -s "$tmp" "$path" && [[ "$(stat -c %a "$path")" == "$mode" ]]; then
        rm -f "$tmp"
        return 0
    fi
    mv -f "$tmp" "$path"
    CONF_CHANGED=1
    log "wrote      $path"
}

# The cgroup plugin follows the host: v1 where the memory controller has its own v1 mount (this
# machine), v2 on a unified hierarchy.
cgroup_plugin() {
    if [[ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]]; then
        echo cgroup/v1
    elif [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
        echo cgroup/v2
    else
        die "no cgroup memory controller under /sys/fs/cgroup: task/cgroup cannot limit memory"
    fi
}

# Slurm's mpi/pmix plugin loads libpmix.so.2 at run time (Debian's libpmix2, which OpenMPI pulls
# in too); without it every srun under MpiDefault=pmix would fail.
mpi_default() {
    local libs
    libs="$(ldconfig -p)"
    if [[ $libs == *'libpmix.so.2 '* ]]; then echo pmix; else echo none; fi
}

write_configs() {
    local host node_line cpus mem cgroup mpi nodes_conf i per_cpus per_mem
    cgroup="$(cgroup_plugin)"
    mpi="$(mpi_default)"
    host="$(hostname -s)"
    # "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105"
    node_line="$(slurmd -C)"
    node_line="${node_line%%$'\n'*}"
    [[ $node_line == NodeName=* ]] || die "slurmd -C printed '$node_line'"
    cpus="$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$node_line")"
    mem="$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$node_line")"
    [[ -n $cpus && -n $mem ]] || die "no CPUs/RealMemory in slurmd -C output '$node_line'"
    ((NODES <= cpus)) ||
        die "--nodes $NODES: this machine has $cpus CPUs and every node needs one of its own; use --nodes $cpus or fewer"
    HOST="$host" NODE_CPUS="$cpus" NODE_MEM="$mem" NODE_LIST=()
    local task_plugin="task/cgroup,task/affinity" constrain_cores=yes
    if ((NODES == 1)); then
        # The whole host as one node, as `slurmd -C` describes it.
        nodes_conf="NodeName=$host NodeAddr=127.0.0.1 ${node_line#NodeName=* } State=UNKNOWN"
        NODE_LIST=("$host")
    else
        # Node K: CPUs/N of the cores and memory/N; no core binding (see the header).
        per_cpus=$((cpus / NODES))
        per_mem=$((mem / NODES))
        NODE_CPUS=$per_cpus NODE_MEM=$per_mem
        task_plugin="task/cgroup"
        constrain_cores=no
        nodes_conf=""
        for ((i = 1; i <= NODES; i++)); do
            NODE_LIST+=("node$i")
            nodes_conf+="NodeName=node$i NodeHostname=$host NodeAddr=127.0.0.1 Port=$((6830 + i)) CPUs=$per_cpus Boards=1 SocketsPerBoard=1 CoresPerSocket=$per_cpus ThreadsPerCore=1 RealMemory=$per_mem State=UNKNOWN"$'\n'
        done
        nodes_conf="${nodes_conf%$'\n'}"
    fi
    local all last
    all="$(IFS=,; echo "${NODE_LIST[*]}")"
    last="${NODE_LIST[-1]}"

    install -d -m 755 "$ETC"
    install_conf "$ETC/slurm.conf" 644 <<EOF
ClusterName=$CLUSTER
# Nodes: $NODES
# The controller and the nodes are this host, reached over loopback whatever its name resolves to.
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge

StateSaveLocation=$STATE/slurmctld
# %n: the node's name, so that several slurmd's on this host (slurmd -N <node>) keep apart.
SlurmdSpoolDir=$STATE/slurmd/%n
# Each node's own tmp: SLURM's PMIx plugin makes its per-step folder there, and two nodes of one
# step would otherwise collide in /tmp ("Cannot create directory .../spmix_appdir_...").
TmpFS=$STATE/tmp/%n
SlurmctldPidFile=$(pidfile_of slurmctld)
SlurmdPidFile=$STATE/run/slurmd-%n.pid
SlurmctldLogFile=$(logfile_of slurmctld)
SlurmdLogFile=$STATE/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info

ProctrackType=proctrack/cgroup
TaskPlugin=$task_plugin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
# srun starts MPI ranks through PMIx (OpenMPI 4.1 from Debian talks PMIx); none without libpmix.
MpiDefault=$mpi

JobAcctGatherType=jobacct_gather/cgroup
JobAcctGatherFrequency=task=5
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
JobCompType=jobcomp/none
# No mail server here; the default (/usr/bin/mail) is missing and slurmctld logs an error.
MailProg=/bin/true

# Large sweeps as one array; finished jobs leave squeue/scontrol quickly (sacct keeps them).
MaxArraySize=10001
MaxJobCount=20000
MinJobAge=30
# A job over its --time gets SIGTERM, then SIGKILL 5 s later; no grace minutes.
KillWait=5
OverTimeLimit=0
InactiveLimit=0
ReturnToService=2
# A node whose slurmd stops answering is DOWN after 30 s (the default is 300 s), and the jobs on it
# end as NODE_FAIL.
SlurmdTimeout=30
# Batch jobs on a failed node are not requeued by SLURM: they end as NODE_FAIL, and
# scalelab sbatch --resume decides what to run again (many real clusters requeue them instead).
JobRequeue=0

$nodes_conf
PartitionName=$PARTITION Nodes=$all Default=YES MaxTime=INFINITE State=UP
PartitionName=$SHORT_PARTITION Nodes=$last MaxTime=$SHORT_MAXTIME MaxNodes=1 State=UP
# Without a default, a job that gives no --mem would be given the whole node's memory.
DefMemPerCPU=$((NODE_MEM / NODE_CPUS))
EOF
    install_conf "$ETC/cgroup.conf" 644 <<EOF
CgroupPlugin=$cgroup
CgroupMountpoint=/sys/fs/cgroup
ConstrainCores=$constrain_cores
ConstrainRAMSpace=yes
AllowedRAMSpace=100
# RAM + swap limited to the RAM request: a job over --mem is OOM-killed rather than swapping.
ConstrainSwapSpace=yes
AllowedSwapSpace=0
EOF
    # Holds the database password: readable by the SlurmUser (root) only, as slurmdbd demands.
    install_conf "$ETC/slurmdbd.conf" 600 <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
PidFile=$(pidfile_of slurmdbd)
LogFile=$(logfile_of slurmdbd)
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
    chown root:root "$ETC/slurmdbd.conf"
}

# Set by write_configs: the host, each node's CPUs and memory (MB), and the node names.
HOST="" NODE_CPUS="" NODE_MEM=""
NODE_LIST=()

# ---------------------------------------------------------------------------------------------
# SLURM daemons
# ---------------------------------------------------------------------------------------------

dbd_answers() { sacctmgr -n -P list cluster format=cluster; }
ctld_answers() { [[ "$(scontrol ping)" == *"is UP"* ]]; }
node_ready() {
    local s
    s="$(sinfo -h -n "$1" -o '%T' 2>/dev/null)"
    [[ $s == idle || $s == mixed || $s == allocated || $s == completing ]]
}
sacct_answers() { sacct -n -X -S now >/dev/null; }

# start_slurm_daemon NAME CMD...: start NAME unless it runs; the SLURM daemons fork themselves.
start_slurm_daemon() {
    local name=$1 pid
    shift
    clear_stale "$name"
    if pid="$(running_pid "$name")"; then
        log "ok         $name (pid $pid)"
        return 1
    fi
    "$@" </dev/null >>"$STATE/log/$name.out" 2>&1 ||
        fail "$name did not start" "$STATE/log/$name.out" "$(logfile_of "$name")"
    return 0
}

start_slurm() {
    if start_slurm_daemon slurmdbd slurmdbd; then
        wait_until "$UP_TIMEOUT" "slurmdbd (sacctmgr list cluster)" slurmdbd dbd_answers
        log "started    slurmdbd (pid $(running_pid slurmdbd))"
    fi
    local clusters
    clusters="$(dbd_answers)" || fail "sacctmgr list cluster failed" "$(logfile_of slurmdbd)"
    if [[ $'\n'$clusters$'\n' != *$'\n'$CLUSTER$'\n'* ]]; then
        sacctmgr -i add cluster "$CLUSTER" >"$STATE/log/sacctmgr.log" 2>&1 ||
            fail "sacctmgr add cluster $CLUSTER failed" "$STATE/log/sacctmgr.log" "$(logfile_of slurmdbd)"
        log "added      cluster $CLUSTER to the accounting database"
    fi
    if start_slurm_daemon slurmctld slurmctld -f "$SLURM_CONF"; then
        wait_until "$UP_TIMEOUT" "slurmctld (scontrol ping)" slurmctld ctld_answers
        log "started    slurmctld (pid $(running_pid slurmctld))"
    fi
    local node name
    for node in "${NODE_LIST[@]}"; do
        name="slurmd-$node"
        install -d -m 755 "$STATE/slurmd/$node" "$STATE/tmp/$node"
        start_slurm_daemon "$name" slurmd -f "$SLURM_CONF" -N "$node" || continue
        wait_until 30 "$name (pid file)" "$name" running_pid "$name"
        log "started    $name (pid $(running_pid "$name"))"
    done
    for node in "${NODE_LIST[@]}"; do
        wait_node "$node"
    done
    wait_until "$UP_TIMEOUT" "sacct" slurmdbd sacct_answers
}

# wait_node: until sinfo shows the node usable. A node that a crash left DOWN returns by itself
# (ReturnToService=2) once slurmd registers; a drained one (e.g. "Kill task failed" when jobs died
# with the daemons) is resumed once. A drain for a real reason (less memory than configured) stays,
# and `sinfo -R` shows it.
wait_node() {
    local node=$1 i s resumed=0
    for ((i = 0; i < UP_TIMEOUT * 2; i++)); do
        node_ready "$node" && return 0
        s="$(sinfo -h -n "$node" -o '%T' 2>/dev/null || true)"
        # A node set DOWN by hand (`scontrol update state=down`, as the node-failure test does)
        # stays down after its slurmd returns: resumed once, like a drained one.
        if [[ $resumed -eq 0 && ($s == drain* || $s == down*) ]]; then
            log "resuming   node $node ($s: $(sinfo -h -n "$node" -o '%E'))"
            scontrol update nodename="$node" state=resume || true
            resumed=1
        fi
        sleep 0.5
    done
    printf '[local-slurm] sinfo -N -l:\n%s\n[local-slurm] sinfo -R:\n%s\n' \
        "$(sinfo -N -l 2>&1)" "$(sinfo -R 2>&1)" >&2
    fail "node $node is not idle after ${UP_TIMEOUT}s" "$(logfile_of "slurmd-$node")" "$(logfile_of slurmctld)"
}

# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------

cmd_up() {
    need_root_and_packages
    local t0=$SECONDS
    install -d -m 755 "$STATE" "$STATE/log" "$STATE/run" "$STATE/slurmctld" "$STATE/slurmd"
    choose_etc
    start_munge
    start_mariadb
    local running_nodes
    running_nodes="$(sed -n 's/^# Nodes: \([0-9]*\)$/\1/p' "$SLURM_CONF" 2>/dev/null || true)"
    # Refused before any config file changes under the running daemons.
    if [[ -n $running_nodes && $running_nodes != "$NODES" ]] && running_pid slurmctld >/dev/null; then
        die "the cluster runs with $running_nodes node(s), not $NODES: \`$0 down\` first, then \`$0 up --nodes $NODES\`"
    fi
    write_configs
    if [[ $CONF_CHANGED -eq 1 ]] && running_pid slurmctld >/dev/null; then
        log "note: the config changed while slurmctld runs; \`$0 down && $0 up --nodes $NODES\` applies it"
    fi
    start_slurm
    log "up in $((SECONDS - t0)) s: cluster $CLUSTER, $NODES node(s) ${NODE_LIST[*]} ($NODE_CPUS CPUs," \
        "$NODE_MEM MB each); partitions $PARTITION (default, every node) and $SHORT_PARTITION" \
        "(${NODE_LIST[-1]}, at most $SHORT_MAXTIME)"
    sinfo -o '%P %a %l %D %c %m %t %N'
    if [[ $ETC == /etc/slurm ]]; then
        log "config in /etc/slurm: plain sbatch, squeue, sacct, scontrol work"
    else
        log "config in $ETC; first: export SLURM_CONF=$SLURM_CONF"
    fi
    log "try:   sbatch --wrap hostname; squeue; sacct -X --format=JobID,State,ExitCode,Elapsed"
    log "logs:  $STATE/log/ (SLURM), $(logfile_of mariadbd), $(logfile_of munged)"
    log "stop:  $0 down"
}

cmd_down() {
    need_root_and_packages
    choose_etc
    local ids i
    if running_pid slurmctld >/dev/null && ids="$(squeue -h -o '%A' 2>/dev/null)" && [[ -n $ids ]]; then
        # shellcheck disable=SC2086  # one job id per word
        scancel $ids 2>/dev/null || true
        log "cancelled  $(wc -w <<<"$ids") job(s); waiting for them to end"
        for ((i = 0; i < 60; i++)); do
            [[ -z "$(squeue -h -o '%A' 2>/dev/null)" ]] && break
            sleep 0.5
        done
    fi
    local d
    # Every node's slurmd (and the single `slurmd` of older versions of this script).
    for d in $(slurmd_daemons) slurmd slurmctld slurmdbd mariadbd munged; do
        stop_daemon "$d"
    done
    local f
    for f in slurm.conf cgroup.conf slurmdbd.conf; do
        if is_this_state "$ETC/$f"; then
            rm -f "$ETC/$f"
            log "removed    $ETC/$f"
        fi
    done
    if [[ -d $STATE ]]; then
        rm -rf "$STATE"
        log "removed    $STATE"
    fi
    log "down"
}

cmd_status() {
    choose_etc
    local d pid
    for d in munged mariadbd slurmdbd slurmctld $(slurmd_daemons); do
        if pid="$(running_pid "$d")"; then
            log "running    $d (pid $pid)"
        elif [[ $d == munged ]] && munge_answers; then
            log "running    munged (not started by this script)"
        else
            log "stopped    $d"
        fi
    done
    log "state $STATE, config $SLURM_CONF"
    if running_pid slurmctld >/dev/null; then
        sinfo -N -o '%N %P %T %c %m %O %e' 2>&1 || true
        squeue -o '%.12i %.9P %.12j %.8u %.10T %.10M %.10l %R' 2>&1 || true
    fi
}

# crash-node NODE: what a power cut does to one node. Its slurmd and every process of its jobs
# (slurmstepd and the tasks, found in the node's cgroup slurm_<node>) die at once, with no chance to
# report; slurmctld notices only when the node stops answering its pings.
cmd_crash_node() {
    local node=${1:-} pid f p killed=0 i
    [[ -n $node ]] || die "crash-node needs a node name (\`$0 status\` lists them)"
    need_root_and_packages
    choose_etc
    pid="$(running_pid "slurmd-$node")" ||
        die "node $node has no running slurmd started by this script (\`$0 status\` lists them)"
    local freezer=/sys/fs/cgroup/freezer/slurm_$node
    [[ -d /sys/fs/cgroup/freezer ]] ||
        die "no cgroup v1 freezer hierarchy: crash-node finds a node's job processes there; use \`scontrol update nodename=$node state=down reason=test\` instead"
    kill -KILL "$pid"
    # Twice: a process may fork while the first pass runs.
    for i in 1 2; do
        while IFS= read -r f; do
            while IFS= read -r p; do
                [[ -n $p ]] || continue
                kill -KILL "$p" 2>/dev/null && killed=$((killed + 1))
            done <"$f"
        done < <(find "$freezer" -name cgroup.procs 2>/dev/null)
        sleep 0.2
    done
    log "crashed    node $node: killed its slurmd (pid $pid) and $killed process(es) of its jobs"
    log "SLURM marks it DOWN when it misses its pings (SlurmdTimeout=30 s); its jobs end as NODE_FAIL"
    log "bring it back: $0 up --nodes $(sinfo -h -N -o '%N' | sort -u | wc -l)"
}

main() {
    case "${1:-}" in
        up)
            shift
            while [[ $# -gt 0 ]]; do
                case "$1" in
                    --nodes)
                        [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--nodes needs a number of nodes, 1 or more (found '${2:-}')"
                        NODES=$2
                        shift 2
                        ;;
                    --nodes=*)
                        NODES=${1#--nodes=}
                        [[ $NODES =~ ^[1-9][0-9]*$ ]] || die "--nodes needs a number of nodes, 1 or more (found '$NODES')"
                        shift
                        ;;
                    *) die "unknown option '$1' for up (--nodes N)" ;;
                esac
            done
            cmd_up
            ;;
        down) cmd_down ;;
        status) cmd_status ;;
        crash-node) cmd_crash_node "${2:-}" ;;
        -h | --help | "")
            usage
            [[ -n ${1:-} ]]
            ;;
        *) die "unknown command '$1' (up, down, status or crash-node; see --help)" ;;
    esac
}

main "$@"
