#!/usr/bin/env bash
# Install the system services the end-to-end tests need (Dovecot, Postfix, PostgreSQL) on
# Debian 12, without starting the system mail services; idempotent, run as root.
#
# What it guarantees when it exits 0:
#   - dovecot-imapd, dovecot-lmtpd and postfix are installed; no system Dovecot or Postfix is
#     started (the tests run private instances on free loopback ports, see tests/servers/);
#   - the system user "triagemail" exists: it owns the private Dovecot's Maildirs, because
#     Dovecot refuses to serve mail as root;
#   - PostgreSQL answers on 127.0.0.1:5432.
#
# PostgreSQL, in order:
#   1. already answering on 127.0.0.1:5432: nothing to do;
#   2. a cluster exists under /etc/postgresql: start it with pg_ctlcluster;
#   3. otherwise (PostgreSQL just installed, or installed without a cluster): start a private
#      cluster in a temporary directory on 127.0.0.1:5432 with trust authentication. The
#      cluster that Debian's package creates on install is dropped first: it would ask for a
#      password on 127.0.0.1 and, left behind, be the one started by step 2 on a later run.
#
# Environment: TRIAGE_PG_PORT overrides 5432 (only to try this script on a busy machine).
set -euo pipefail

readonly MAIL_PACKAGES=(dovecot-imapd dovecot-lmtpd postfix)
readonly MAIL_USER=triagemail
readonly PG_HOST=127.0.0.1
readonly PG_PORT="${TRIAGE_PG_PORT:-5432}"
readonly POLICY_RC=/usr/sbin/policy-rc.d
APT_UPDATED=no
POLICY_RC_OURS=no

say() { printf 'install-system-deps: %s\n' "$*"; }
die() { printf 'install-system-deps: ERROR: %s\n' "$*" >&2; exit 1; }

# A package counts as installed only when dpkg says "install ok installed".
is_installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

missing_packages() {
    local pkg
    for pkg in "$@"; do
        is_installed "$pkg" || printf '%s\n' "$pkg"
    done
}

apt_update_once() {
    if [[ "$APT_UPDATED" == no ]]; then
        say "apt-get update"
        apt-get update -qq
        APT_UPDATED=yes
    fi
}

# policy-rc.d exiting 101 tells invoke-rc.d (and so every maintainer script) not to start
# or restart services; it is removed on exit, also when the script fails.
block_service_starts() {
    if [[ -e "$POLICY_RC" ]]; then
        say "keeping the existing $POLICY_RC"
        return
    fi
    printf '#!/bin/sh\nexit 101\n' >"$POLICY_RC"
    chmod 755 "$POLICY_RC"
    POLICY_RC_OURS=yes
}

unblock_service_starts() {
    if [[ "$POLICY_RC_OURS" == yes ]]; then
        rm -f "$POLICY_RC"
        POLICY_RC_OURS=no
    fi
}
trap unblock_service_starts EXIT

apt_install() {
    apt_update_once
    block_service_starts
    say "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"
    unblock_service_starts
}

install_mail_servers() {
    local missing
    mapfile -t missing < <(missing_packages "${MAIL_PACKAGES[@]}")
    if ((${#missing[@]} == 0)); then
        say "mail servers already installed (${MAIL_PACKAGES[*]})"
        return
    fi
    # "No configuration" leaves /etc/postfix/main.cf absent, so no system Postfix can run.
    say "preseeding postfix: No configuration"
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt_install "${missing[@]}"
    say "installed ${missing[*]}"
}

create_mail_user() {
    if getent passwd "$MAIL_USER" >/dev/null; then
        say "system user $MAIL_USER already exists (uid $(id -u "$MAIL_USER"))"
        return
    fi
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin --comment "triage-daemon test Maildirs" "$MAIL_USER"
    say "created system user $MAIL_USER (uid $(id -u "$MAIL_USER"))"
}

pg_answers() {
    command -v pg_isready >/dev/null && pg_isready -q -h "$PG_HOST" -p "$PG_PORT"
}

pg_bin_dir() {
    local initdb
    initdb="$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1)"
    [[ -n "$initdb" ]] && dirname "$initdb"
}

# Prints "version cluster" for each cluster configured under /etc/postgresql.
pg_clusters() {
    local conf
    for conf in /etc/postgresql/*/*/postgresql.conf; do
        [[ -e "$conf" ]] || continue
        conf="${conf#/etc/postgresql/}"
        printf '%s %s\n' "${conf%%/*}" "$(basename "$(dirname "$conf")")"
    done
}

wait_for_pg() {
    local i
    for i in $(seq 1 30); do
        pg_answers && return 0
        sleep 1
    done
    return 1
}

install_postgresql() {
    local before version name
    before="$(pg_clusters)"
    say "PostgreSQL is not installed: installing Debian's postgresql"
    apt_install postgresql
    # The package's postinst creates a "main" cluster (password auth on 127.0.0.1): drop the
    # clusters the install created, see the header.
    while read -r version name; do
        [[ -n "$version" ]] || continue
        grep -qxF "$version $name" <<<"$before" && continue
        say "dropping the cluster $version/$name created by the package"
        pg_dropcluster --stop "$version" "$name"
    done < <(pg_clusters)
}

start_existing_cluster() {
    local version name
    read -r version name < <(pg_clusters | grep ' main$' || pg_clusters)
    say "starting the existing cluster $version/$name"
    pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start || true
}

start_private_cluster() {
    local bin data
    bin="$(pg_bin_dir)" || die "no initdb under /usr/lib/postgresql/*/bin"
    data="$(mktemp -d /tmp/triage-pg.XXXXXX)"
    chown postgres:postgres "$data"
    say "starting a private PostgreSQL cluster in $data on $PG_HOST:$PG_PORT (trust auth)"
    runuser -u postgres -- "$bin/initdb" -D "$data/data" -U postgres -A trust -E UTF8 \
        --locale=C.UTF-8 >"$data/initdb.log" 2>&1 \
        || die "initdb failed, see $data/initdb.log"
    runuser -u postgres -- "$bin/pg_ctl" -D "$data/data" -l "$data/postgresql.log" -w -t 60 \
        -o "-c listen_addresses=$PG_HOST -p $PG_PORT -k $data" start >/dev/null \
        || die "the private cluster did not start, see $data/postgresql.log"
}

ensure_postgresql() {
    if pg_answers; then
        say "PostgreSQL already answers on $PG_HOST:$PG_PORT"
        return
    fi
    [[ -n "$(pg_bin_dir)" ]] || install_postgresql
    if [[ -n "$(pg_clusters)" ]]; then
        start_existing_cluster
    else
        start_private_cluster
    fi
    wait_for_pg || die "PostgreSQL does not answer on $PG_HOST:$PG_PORT"
    say "PostgreSQL answers on $PG_HOST:$PG_PORT"
}

main() {
    [[ "$(id -u)" == 0 ]] || die "run me as root"
    install_mail_servers
    create_mail_user
    ensure_postgresql
    say "done"
}

# Sourcing the script (to try one function) defines everything and runs nothing.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    main "$@"
fi
